"""The entity declarations agree with the schema, and `node(id:)` answers for every node type.

Entities and their links are declared once (``loaders.entities``); the schema binds each to
its GraphQL type (``schema.entity_types``). These tests catch what mypy cannot: an entity
nobody bound, a Node type ``node(id:)`` cannot load, a global id that crashes the server.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLObjectType
from sqlalchemy import JSON, Column, DateTime, String, Table
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from dsa110.settings import Settings
from loaders.entities import ENTITIES, RELATIONS
from resolvers.ids import encode_global_id
from schema.base import Node
from schema.entity_types import BINDINGS, NODE_ENTITIES, WRAP
from schema.schema import build_schema
from tests.graph.conftest import Graph


def test_every_entity_and_every_link_end_has_a_graphql_type() -> None:
    assert set(ENTITIES) == set(WRAP), "bind every entity in schema.entity_types"
    for relation in RELATIONS:
        assert relation.parent in WRAP, relation
        assert relation.child in WRAP, relation
    assert len({b.entity for b in BINDINGS}) == len(BINDINGS), "an entity is bound twice"


def test_every_node_type_of_the_schema_is_fetchable_by_global_id() -> None:
    type_map = build_schema(Settings())._schema.type_map
    node_types = {
        name
        for name, gql in type_map.items()
        if isinstance(gql, GraphQLObjectType) and any(i.name == "Node" for i in gql.interfaces)
    }
    assert node_types == set(NODE_ENTITIES)
    for binding in BINDINGS:
        assert (binding.cls.__name__ in NODE_ENTITIES) == issubclass(binding.cls, Node)


def _value(column: Column[Any], pks: dict[str, int]) -> Any:
    """A plausible value for a required column: foreign keys point at the row made for their table."""
    for fk in column.foreign_keys:
        return pks[fk.column.table.name]
    stored = getattr(column.type, "impl", column.type)  # a TypeDecorator: what it stores
    if isinstance(stored, JSON):
        return {}
    if isinstance(stored, DateTime):
        return datetime(2025, 10, 24, 14, tzinfo=UTC)
    if isinstance(stored, String):
        return f"{column.table.name}-{column.name}"[: stored.length or 64]
    return stored.python_type(1)  # integers, floats, booleans


def _needed(tables: set[Table]) -> list[Table]:
    """``tables`` and what their required foreign keys point at, parents first."""
    todo, seen = list(tables), set(tables)
    while todo:
        for column in todo.pop().columns:
            for fk in column.foreign_keys:
                parent = fk.column.table
                if not column.nullable and parent not in seen and isinstance(parent, Table):
                    seen.add(parent)
                    todo.append(parent)
    return [table for table in t.metadata.sorted_tables if table in seen]


async def _one_row_of_each(engine: AsyncEngine) -> dict[str, int]:
    """Insert one row into every node entity's table (and its required parents): table -> pk."""
    pks: dict[str, int] = {}
    async with engine.begin() as conn:
        for table in _needed({entity.table for entity in NODE_ENTITIES.values()}):
            row = {
                c.name: _value(c, pks)
                for c in table.columns
                if not c.nullable and not c.primary_key and c.default is None and c.server_default is None
            }
            result = await conn.execute(table.insert().values(**row))
            pks[table.name] = result.inserted_primary_key[0]
    return pks


@pytest.fixture
async def graph_of_one_each(
    engine: AsyncEngine, empty_db_url: str, tmp_path: Path
) -> tuple[Graph, dict[str, int]]:
    pks = await _one_row_of_each(engine)
    return Graph(engine, Settings(data_dir=tmp_path, database_url=empty_db_url)), pks


NODE = "query($i: ID!) { node(id: $i) { __typename id } }"


def _raw_id(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def _codes(graph: Graph, global_id: str) -> set[str]:
    result = await graph.run(NODE, i=global_id)
    assert result.data is None
    return {e.extensions["code"] for e in result.errors or []}


NOT_NODES = [
    (encode_global_id("CatalogSource", 1), "NOT_FOUND"),  # a GraphQL type, but not a Node
    (encode_global_id("CrossMatch", 1), "NOT_FOUND"),
    (encode_global_id("Subband", 1), "NOT_FOUND"),
    (encode_global_id("Nope", 1), "NOT_FOUND"),
    ("%%%", "BAD_USER_INPUT"),
    ("", "BAD_USER_INPUT"),
    ("A" * 300, "BAD_USER_INPUT"),
    (_raw_id("Source"), "BAD_USER_INPUT"),
    (_raw_id("Source:"), "BAD_USER_INPUT"),
    (_raw_id("Source:abc"), "BAD_USER_INPUT"),
    (_raw_id("Source:-1"), "BAD_USER_INPUT"),
    (_raw_id(f"Source:{2**80}"), "BAD_USER_INPUT"),
    (base64.urlsafe_b64encode(b"\xff\xfe:1").decode(), "BAD_USER_INPUT"),
]


async def test_node_over_every_entity(graph_of_one_each: tuple[Graph, dict[str, int]]) -> None:
    """A valid id gives the object; an unknown row is NOT_FOUND; an id naming no node is a coded error."""
    graph, pks = graph_of_one_each
    for type_name, entity in NODE_ENTITIES.items():
        global_id = encode_global_id(type_name, pks[entity.table.name])
        data = await graph.data(NODE, i=global_id)
        assert data["node"] == {"__typename": type_name, "id": global_id}
        assert await _codes(graph, encode_global_id(type_name, 10**9)) == {"NOT_FOUND"}, type_name
    for global_id, code in NOT_NODES:
        assert await _codes(graph, global_id) == {code}, global_id
