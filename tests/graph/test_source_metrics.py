"""Source.maxSnr, newSource, newHighSigma and eseHeuristicScore on the demo data set."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.graph.conftest import Graph

ALL_SOURCES = """{ sources(first: 500) { totalCount nodes {
  sourceId nEpochs v chi2Nu maxSnr newSource newHighSigma eseHeuristicScore
  measurements(first: 500) { nodes { mjd peakFluxJy peakFluxErrJy } }
} } }"""


async def _all_sources(graph: Graph) -> list[dict[str, Any]]:
    data = await graph.data(ALL_SOURCES)
    nodes: list[dict[str, Any]] = data["sources"]["nodes"]
    assert len(nodes) == data["sources"]["totalCount"]
    return nodes


async def test_max_snr_is_the_best_measurement_of_each_source(graph: Graph) -> None:
    nodes = await _all_sources(graph)
    measured = [n for n in nodes if n["nEpochs"]]
    assert measured
    for node in measured:
        points = node["measurements"]["nodes"]
        assert len(points) == node["nEpochs"]
        best = max(p["peakFluxJy"] / p["peakFluxErrJy"] for p in points)
        assert node["maxSnr"] == pytest.approx(best, rel=1e-12), node["sourceId"]
    assert all(n["maxSnr"] is None for n in nodes if not n["nEpochs"])


async def test_new_source_follows_its_definition_and_is_never_null(graph: Graph) -> None:
    nodes = await _all_sources(graph)
    for node in nodes:
        points = node["measurements"]["nodes"]
        detected = [p for p in points if p["peakFluxJy"] / p["peakFluxErrJy"] >= 5.0]
        expected = None
        if detected:
            t_d = min(p["mjd"] for p in detected)
            before = [p["peakFluxErrJy"] for p in points if p["mjd"] < t_d]
            if before:
                flux_d = max(p["peakFluxJy"] for p in detected if p["mjd"] == t_d)
                expected = flux_d / min(before)
        assert node["newHighSigma"] == (None if expected is None else pytest.approx(expected, rel=1e-12))
        assert node["newSource"] is (expected is not None and expected > 5.0), node["sourceId"]
    # The demo's faint sources do cross 5 sigma after quieter epochs.
    assert any(n["newSource"] for n in nodes) and not all(n["newSource"] for n in nodes)


async def test_filters_and_ordering(graph: Graph) -> None:
    data = await graph.data(
        """{ bright: sources(first: 500, filter: {maxSnrMin: 20}, orderBy: MAX_SNR, direction: DESC) {
               totalCount nodes { maxSnr } }
             new: sources(first: 500, filter: {newSource: true}) { totalCount nodes { newSource } }
             old: sources(filter: {newSource: false}) { totalCount }
             all: sources { totalCount } }"""
    )
    snrs = [n["maxSnr"] for n in data["bright"]["nodes"]]
    assert snrs and all(s >= 20 for s in snrs)
    assert snrs == sorted(snrs, reverse=True)
    assert data["bright"]["totalCount"] == len(snrs)
    assert all(n["newSource"] for n in data["new"]["nodes"])
    assert data["new"]["totalCount"] + data["old"]["totalCount"] == data["all"]["totalCount"]
    ascending = await graph.data("{ sources(first: 500, orderBy: MAX_SNR) { nodes { maxSnr } } }")
    values = [n["maxSnr"] for n in ascending["sources"]["nodes"]]
    known = [v for v in values if v is not None]
    assert known == sorted(known) and values[: len(known)] == known  # nulls last


async def test_ese_heuristic_score_by_hand_from_v_and_chi2(graph: Graph) -> None:
    # A 2-day demo holds no ESE candidate, so only the V and chi2_nu terms can score:
    # 0.4 if V > 0.2 else 0.2 if V > 0.1; plus 0.3 if chi2_nu > 3 else 0.15 if chi2_nu > 2.
    nodes = await _all_sources(graph)
    for node in nodes:
        if not node["nEpochs"]:
            assert node["eseHeuristicScore"] is None
            continue
        v, chi2 = node["v"], node["chi2Nu"]
        amplitude = 0 if v is None else 40 if v > 0.2 else 20 if v > 0.1 else 0
        significance = 30 if chi2 > 3 else 15 if chi2 > 2 else 0
        assert node["eseHeuristicScore"] == (amplitude + significance) / 100, node["sourceId"]
    assert {n["eseHeuristicScore"] for n in nodes} - {None, 0.0}, "the demo has variable sources"


async def test_the_score_costs_one_statement_whatever_the_number_of_sources(graph: Graph) -> None:
    document = "query($n: Int!) { sources(first: $n) { nodes { eseHeuristicScore } } }"
    counts = []
    for n in (5, 200):
        with graph.statements.measure() as used:
            await graph.data(document, n=n)
        counts.append(used[0])
    assert counts[0] == counts[1] <= 2  # the sources page, then one batch of candidates


@pytest.mark.parametrize(
    ("document", "variables", "code"),
    [
        ('{ sources(filter: {maxSnrMin: "high"}) { totalCount } }', {}, "GRAPHQL_VALIDATION_FAILED"),
        ('{ sources(filter: {newSource: "yes"}) { totalCount } }', {}, "GRAPHQL_VALIDATION_FAILED"),
        ("{ sources(orderBy: MAX_SNR_PLEASE) { totalCount } }", {}, "GRAPHQL_VALIDATION_FAILED"),
        (
            "query($f: SourceFilter) { sources(filter: $f) { totalCount } }",
            {"f": {"maxSnrMin": math.inf}},
            "BAD_USER_INPUT",
        ),
        (
            "query($f: SourceFilter) { sources(filter: $f) { totalCount } }",
            {"f": {"maxSnrMin": -math.nan}},
            "BAD_USER_INPUT",
        ),
    ],
)
async def test_bad_input_gets_a_code(
    graph: Graph, document: str, variables: dict[str, Any], code: str
) -> None:
    result = await graph.run(document, **variables)
    assert result.errors, document
    assert {e.extensions["code"] for e in result.errors} == {code}, [e.message for e in result.errors]
