"""docs/CONTRIBUTING.md "Add a linked type", followed step by step for a type the project lacks.

A ``SourceNote`` (free text attached to a source) gets a table, an entity and a link in each
direction, a GraphQL type with a link field, and a binding: exactly the files the guide
lists, here in one test module (a real type puts each piece in the named file). The test
then queries it through the real executor and loaders: links resolve, ``node(id:)`` finds
a note, and the notes of many sources cost one statement, like every other link.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import strawberry
from sqlalchemy import Column, Integer, MetaData, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from dsa110.db import tables as t
from dsa110.settings import Settings
from loaders import Loaders
from loaders.entities import SOURCE
from loaders.relations import Entity, Relation
from resolvers import links, lists
from resolvers.context import GraphContext
from schema.base import GraphInfo, Loaded, Node, row_factory
from schema.entity_types import NODE_ENTITIES, WRAP
from schema.execution import BreadthFirstExecutor
from schema.query import CoreQuery
from schema.scalars import SCALAR_MAP
from schema.types import Source
from tests.credentials import TEST_ADMIN
from tests.graph.conftest import StatementCounter

# 1. The table (a real one: dsa110/db/tables.py and a migration).
notes = Table(
    "example_source_notes",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("source_pk", Integer, nullable=False, index=True),
    Column("text", Text, nullable=False),
)


# 3. The GraphQL type, with its link to the source (a real one: schema/<domain>.py).
@strawberry.type(description="A note on a source (an example type, tests only).")
class SourceNote(Node):
    source_pk: strawberry.Private[int]
    text: str

    @strawberry.field
    def source(self, info: GraphInfo) -> Loaded[Source]:
        return links.one(info.context, SOURCE, self.source_pk)


# 2. The entity and the link from a source to its notes (a real one: loaders/entities.py).
NOTE: Entity[SourceNote] = Entity("source_note", notes, "source note")
SOURCE_NOTES: Relation[SourceNote] = Relation(SOURCE, "notes", NOTE, notes.c.source_pk, (notes.c.id,))


# The field that follows the link (a real one: a field on Source in schema/types.py).
@strawberry.type
class NotesQuery:
    @strawberry.field
    async def source_notes(self, info: GraphInfo, source_id: str) -> list[SourceNote]:
        source = await lists.by_natural_key(info.context, SOURCE, source_id)
        return await links.all_of(info.context, SOURCE_NOTES, source.pk)


# 4. The binding (a real one: one `bind(NOTE, SourceNote)` line in schema/entity_types.py).
NOTE_WRAP = {**WRAP, NOTE: row_factory(SourceNote)}


@pytest.fixture
async def noted_sources(demo_engine: AsyncEngine) -> AsyncIterator[list[str]]:
    """Two notes on each of the first three sources of the demo; the table goes afterwards."""
    async with demo_engine.begin() as conn:
        await conn.run_sync(notes.create)
        rows = (await conn.execute(select(t.sources.c.id, t.sources.c.source_id).limit(3))).all()
        await conn.execute(
            notes.insert(),
            [{"source_pk": pk, "text": f"{name} note {i}"} for pk, name in rows for i in (1, 2)],
        )
    try:
        yield [name for _, name in rows]
    finally:
        async with demo_engine.begin() as conn:
            await conn.run_sync(notes.drop)


async def test_the_new_type_links_both_ways_in_one_statement_per_level(
    demo_engine: AsyncEngine,
    demo_settings: Settings,
    noted_sources: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(NODE_ENTITIES, "SourceNote", NOTE)  # what the binding derives
    schema = strawberry.Schema(
        query=merge_types("Query", (NotesQuery, CoreQuery)),
        types=[SourceNote],
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=BreadthFirstExecutor,
    )

    async def run(document: str, **variables: object) -> dict[str, object]:
        context = GraphContext(
            engine=demo_engine,
            settings=demo_settings,
            loaders=Loaders(demo_engine, NOTE_WRAP, max_page_size=demo_settings.max_page_size),
            identity=TEST_ADMIN,
        )
        result = await schema.execute(document, variable_values=variables, context_value=context)
        assert result.errors is None, result.errors
        assert result.data is not None
        return result.data

    a, b, c = noted_sources
    counter = StatementCounter(demo_engine)
    with counter.measure() as statements:
        data = await run(
            """query($a: String!, $b: String!, $c: String!) {
              a: sourceNotes(sourceId: $a) { id text source { sourceId } }
              b: sourceNotes(sourceId: $b) { id text source { sourceId } }
              c: sourceNotes(sourceId: $c) { id text source { sourceId } }
            }""",
            a=a,
            b=b,
            c=c,
        )
    for alias, name in zip("abc", noted_sources, strict=True):
        found = data[alias]
        assert isinstance(found, list)
        assert [n["text"] for n in found] == [f"{name} note 1", f"{name} note 2"]
        assert {n["source"]["sourceId"] for n in found} == {name}
    # Three sources by name, their notes, the notes' sources: one statement each, for any count.
    assert statements == [3]

    note_id = data["a"][0]["id"]
    node = await run("query($i: ID!) { node(id: $i) { ... on SourceNote { text } } }", i=note_id)
    assert node == {"node": {"text": f"{a} note 1"}}
