"""Cost analysis: what is certainly too much is refused before any SQL runs; what the
dashboard and the REST layer ask for always passes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import GraphQLSchema, parse
from graphql.language import IntValueNode, ListTypeNode, NamedTypeNode, NonNullTypeNode, TypeNode

from compat_rest.app import declared_routes
from compat_rest.routing import RestRoute
from dsa110.settings import Settings
from resolvers.catalog_validation import MAX_FITS
from schema.cost import FIELD_WEIGHTS, LIST_SIZES, ORDERED_ITEM_COST, CostModel, operation_cost
from schema.schema import build_schema
from server.app import create_app
from tests.graph.conftest import StatementCounter

DEEP = (
    "measurements(first: 500) { nodes { image { measurements(first: 500) { nodes { source {"
    " measurements(first: 500) { nodes { peakFluxJy } } } } } } } }"
)
ISSUE_QUERY = f"{{ sources(first: 500) {{ nodes {{ {DEEP} }} }} }}"
"""The reproduction of issue 15 item 2 (depth 11, legal under every other limit)."""
THIRTY_ALIASES = (
    "{ " + " ".join(f"a{i}: sources(first: 500) {{ nodes {{ {DEEP} }} }}" for i in range(30)) + " }"
)


@pytest.fixture(scope="module")
def graphql_schema() -> GraphQLSchema:
    return build_schema(Settings())._schema


def cost(schema: GraphQLSchema, document: str, **variables: Any) -> int:
    return operation_cost(schema, parse(document), None, variables, CostModel())


@pytest.fixture
async def app_client(demo_settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, StatementCounter]]:
    app = create_app(demo_settings, migrate=False)
    statements = StatementCounter(app.state.engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield http, statements
    await app.state.engine.dispose()


# --- the model, by hand ------------------------------------------------------------------------


def test_costs_multiply_down_the_tree(graphql_schema: GraphQLSchema) -> None:
    # sources: 1; its nodes list: 10 items, each 1
    assert cost(graphql_schema, "{ sources(first: 10) { nodes { sourceId } } }") == 1 + 1 + 10
    # + per source: the measurements connection (1) and its 20 nodes (1 + 20 * 1)
    nested = "{ sources(first: 10) { nodes { measurements(first: 20) { nodes { mjd } } } } }"
    assert cost(graphql_schema, nested) == 2 + 10 * (1 + 1 + (1 + 20))
    # no `first`: the default page (50); totalCount is one count per connection
    assert cost(graphql_schema, "{ sources { totalCount nodes { sourceId } } }") == 1 + 1 + 1 + 50
    # leaves are free, objects cost 1: a single source with its light curve (weight 10)
    # and its points (500 estimated)
    assert cost(graphql_schema, '{ source(sourceId: "x") { lightCurve { points { mjd } } } }') == (
        1 + 10 + 1 + 500
    )


def test_a_list_sorted_by_another_order_costs_each_item_more(graphql_schema: GraphQLSchema) -> None:
    by_epoch = "{ sources(first: 10) { nodes { measurements(first: 20) { nodes { mjd } } } } }"
    by_snr = "{ sources(first: 10) { nodes { measurements(first: 20, orderBy: SNR) { nodes { mjd } } } } }"
    # each of a source's 20 measurements is sorted: ORDERED_ITEM_COST more per item
    assert cost(graphql_schema, by_snr) - cost(graphql_schema, by_epoch) == 10 * 20 * ORDERED_ITEM_COST
    by_variable = (
        "query Q($o: MeasurementOrderField) { sources(first: 10) { nodes {"
        " measurements(first: 20, orderBy: $o) { nodes { mjd } } } } }"
    )
    assert cost(graphql_schema, by_variable, o="SNR") == cost(graphql_schema, by_snr)
    assert cost(graphql_schema, by_variable) == cost(graphql_schema, by_epoch)  # not given: default
    assert cost(graphql_schema, by_variable, o=None) == cost(graphql_schema, by_epoch)
    # the variable's own default is the order asked for when no value is sent
    by_default = by_variable.replace("MeasurementOrderField)", "MeasurementOrderField = SNR)")
    assert cost(graphql_schema, by_default) == cost(graphql_schema, by_snr)
    assert cost(graphql_schema, by_default, o=None) == cost(graphql_schema, by_epoch)  # null: default order
    # a top-level list named in its own default order costs what the default does
    plain = "{ sources(first: 10) { nodes { sourceId } } }"
    named_default = "{ sources(first: 10, orderBy: SOURCE_ID) { nodes { sourceId } } }"
    by_eta = "{ sources(first: 10, orderBy: ETA) { nodes { sourceId } } }"
    assert cost(graphql_schema, named_default) == cost(graphql_schema, plain)
    assert cost(graphql_schema, by_eta) == cost(graphql_schema, plain) + 10 * ORDERED_ITEM_COST


def test_science_fields_weigh_more_than_plain_objects(graphql_schema: GraphQLSchema) -> None:
    fits = cost(graphql_schema, "{ images(first: 10) { nodes { fit(raDeg: 1, decDeg: 2) { amplitude } } } }")
    plain = cost(graphql_schema, "{ images(first: 10) { nodes { group { groupId } } } }")
    assert fits == 2 + 10 * (1 + FIELD_WEIGHTS["Image.fit"])
    assert plain == 2 + 10 * (1 + 1)


def test_a_catalog_validation_weighs_its_fits(graphql_schema: GraphQLSchema) -> None:
    # Each check runs up to MAX_FITS Gaussian fits: a page of them costs what those fits do,
    # so the default limit refuses a whole page of images validated at once.
    one = cost(graphql_schema, "{ image(imageId: 1) { catalogValidation { catalog } } }")
    assert one >= MAX_FITS * FIELD_WEIGHTS["Image.fit"]
    page = cost(graphql_schema, "{ images(first: 500) { nodes { catalogValidation { catalog } } } }")
    assert page > Settings().max_query_cost


def test_variables_and_defaults_set_the_page(graphql_schema: GraphQLSchema) -> None:
    document = "query Q($n: Int) { sources(first: $n) { nodes { sourceId } } }"
    assert cost(graphql_schema, document, n=3) == 2 + 3
    assert cost(graphql_schema, document) == 2 + 50  # not given: the default page
    with_default = "query Q($n: Int = 7) { sources(first: $n) { nodes { sourceId } } }"
    assert cost(graphql_schema, with_default) == 2 + 7
    # a page over the cap is costed at the cap (the field refuses it anyway)
    assert cost(graphql_schema, document, n=10**9) == 2 + 500


def test_fragments_count_once_per_use_and_skip_is_honoured(graphql_schema: GraphQLSchema) -> None:
    inline = "{ sources(first: 4) { nodes { measurements(first: 3) { nodes { mjd } } } } }"
    spread = (
        "query { sources(first: 4) { ...S } } "
        "fragment S on SourceConnection { nodes { measurements(first: 3) { ...M } } } "
        "fragment M on MeasurementConnection { nodes { mjd } }"
    )
    assert cost(graphql_schema, inline) == cost(graphql_schema, spread)
    skipped = "query Q($p: Boolean!) { sources(first: 4) { nodes { sourceId lightCurve @include(if: $p) { nMeasurements: nReferences } } } }"
    assert cost(graphql_schema, skipped, p=False) == 2 + 4
    assert cost(graphql_schema, skipped, p=True) == 2 + 4 * (1 + 10 + 0)


def test_a_fragment_fan_out_is_costed_without_expanding_it(graphql_schema: GraphQLSchema) -> None:
    # Each fragment spreads the next one 4 times: 4^12 field visits if expanded naively.
    levels = 12
    fragments = " ".join(
        f"fragment F{i} on Source {{ {' '.join(f'a{j}: images(first: 1) {{ nodes {{ id }} }}' for j in range(1))} "
        + (" ".join(f"...F{i + 1}" for _ in range(4)) if i + 1 < levels else "sourceId")
        + " }"
        for i in range(levels)
    )
    document = f'{{ source(sourceId: "x") {{ ...F0 }} }} {fragments}'
    assert cost(graphql_schema, document) > 4**10


def test_every_weighted_or_sized_field_exists(graphql_schema: GraphQLSchema) -> None:
    for key in [*FIELD_WEIGHTS, *LIST_SIZES]:
        type_name, field = key.split(".")
        if type_name == "*":
            continue
        named = graphql_schema.get_type(type_name)
        assert named is not None and field in named.fields, key  # type: ignore[attr-defined]


# --- every REST route stays under the limit -----------------------------------------------------


def _named(type_node: TypeNode) -> str:
    while isinstance(type_node, NonNullTypeNode | ListTypeNode):
        type_node = type_node.type
    assert isinstance(type_node, NamedTypeNode)
    return type_node.name.value


def _worst_case_variables(route: RestRoute, document: str, max_page: int) -> dict[str, Any]:
    """Every Int variable at the largest list size the route accepts; every Boolean true."""
    limits = [int(p.maximum) for p in (*route.params, *route.body) if "limit" in p.name and p.maximum]
    largest = max([max_page, *limits])
    variables: dict[str, Any] = {}
    for operation in parse(document).definitions:
        for definition in getattr(operation, "variable_definitions", None) or ():
            kind = _named(definition.type)
            name = definition.variable.name.value
            if kind == "Int" and not isinstance(definition.default_value, IntValueNode):
                variables[name] = largest
            elif kind == "Boolean":
                variables[name] = True
    return variables


def test_every_compat_document_costs_less_than_the_limit(graphql_schema: GraphQLSchema) -> None:
    settings = Settings()
    checked = 0
    for route in declared_routes(settings):
        for document in route.documents:
            variables = _worst_case_variables(route, document, settings.max_page_size)
            value = operation_cost(graphql_schema, parse(document), None, variables, CostModel())
            assert value <= settings.max_query_cost, (route.method, route.path, value)
            checked += 1
    assert checked > 50


# --- over HTTP ----------------------------------------------------------------------------------


@pytest.mark.parametrize("document", [ISSUE_QUERY, THIRTY_ALIASES], ids=["depth-11", "30-aliases"])
async def test_the_issue_queries_are_refused_before_any_sql(
    app_client: tuple[httpx.AsyncClient, StatementCounter], document: str
) -> None:
    http, statements = app_client
    with statements.measure() as ran:
        response = await http.post("/graphql", json={"query": document})
    body = response.json()
    assert response.status_code == 200  # GraphQL over HTTP (application/json): errors in the body
    assert "data" not in body  # refused before execution: no data entry
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["limit"] == 1_000_000
    assert error["extensions"]["cost"] > 500**3
    assert ran == [0]


async def test_dashboard_queries_pass(app_client: tuple[httpx.AsyncClient, StatementCounter]) -> None:
    http, _ = app_client
    document = "{ sources(first: 100) { totalCount nodes { sourceId v eta measurements(first: 50) { nodes { mjd peakFluxJy } } } } }"
    response = await http.post("/graphql", json={"query": document})
    assert response.status_code == 200
    assert "errors" not in response.json()
    assert len(response.json()["data"]["sources"]["nodes"]) == 100


async def test_the_limit_is_a_setting(demo_settings: Settings) -> None:
    import dataclasses

    app = create_app(dataclasses.replace(demo_settings, max_query_cost=20), migrate=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        small = await http.post("/graphql", json={"query": "{ sources(first: 5) { nodes { sourceId } } }"})
        large = await http.post("/graphql", json={"query": "{ sources(first: 50) { nodes { sourceId } } }"})
        rest = await http.get("/api/images", params={"limit": 100})
    await app.state.engine.dispose()
    assert "errors" not in small.json()
    assert large.json()["errors"][0]["extensions"] == {"code": "QUERY_TOO_COSTLY", "cost": 52, "limit": 20}
    assert rest.status_code == 400
    assert rest.json()["code"] == "QUERY_TOO_COSTLY"


async def test_a_known_document_is_costed_by_its_variables(demo_settings: Settings) -> None:
    # Costs are cached per document text and the values of the variables they depend on:
    # the same text is refused or answered by its own variables, in any order, repeatedly.
    import dataclasses

    app = create_app(dataclasses.replace(demo_settings, max_query_cost=30), migrate=False)
    document = "query Q($n: Int!, $s: Boolean!) { sources(first: $n) { nodes { sourceId } totalCount @skip(if: $s) } }"
    answers = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        for n, skip in [(5, False), (50, False), (5, True), (28, True), (28, False), (50, False), (5, False)]:
            body = (
                await http.post("/graphql", json={"query": document, "variables": {"n": n, "s": skip}})
            ).json()
            answers.append(body["errors"][0]["extensions"]["cost"] if "errors" in body else "ok")
    await app.state.engine.dispose()
    assert answers == ["ok", 53, "ok", "ok", 31, 53, "ok"]
