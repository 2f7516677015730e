"""Light curves in the graph agree with the measurements they are made of."""

from __future__ import annotations

import pytest

from tests.graph.conftest import Graph


async def test_light_curve_points_are_the_measurements_in_time_order(graph: Graph) -> None:
    data = await graph.data(
        """{ sources(first: 5, orderBy: N_EPOCHS, direction: DESC) { nodes { sourceId nEpochs
             measurements(first: 500) { nodes { mjd peakFluxJy peakFluxErrJy image { imageId } } }
             lightCurve { nReferences points { mjd time fluxJy fluxErrJy normFluxJy normFluxErrJy corrected imageId } } } } }"""
    )
    for source in data["sources"]["nodes"]:
        points = source["lightCurve"]["points"]
        measurements = source["measurements"]["nodes"]
        assert len(points) == len(measurements) == source["nEpochs"]
        assert [p["mjd"] for p in points] == sorted(p["mjd"] for p in points)
        for point, m in zip(points, measurements, strict=True):
            assert point["mjd"] == pytest.approx(m["mjd"])
            assert point["fluxJy"] == pytest.approx(m["peakFluxJy"])
            assert point["imageId"] == m["image"]["imageId"]
            assert point["time"].endswith("Z")
            if point["corrected"]:
                # sigma_norm >= sigma / C: the correction's own error only adds
                ratio = point["fluxJy"] / point["normFluxJy"]
                assert point["normFluxErrJy"] >= point["fluxErrJy"] / ratio * (1 - 1e-9)
            else:
                assert point["normFluxJy"] == pytest.approx(point["fluxJy"])


async def test_source_metrics_match_a_recompute_from_its_measurements(graph: Graph) -> None:
    from dsa110.science.variability import batch_metrics

    data = await graph.data(
        """{ sources(first: 20, filter: {nEpochsMin: 3}) { nodes { v eta chi2Nu meanFluxJy vsAbsSignificantMax mAbsSignificantMax
             measurements(first: 500) { nodes { peakFluxJy peakFluxErrJy mjd } } } } }"""
    )
    for source in data["sources"]["nodes"]:
        nodes = source["measurements"]["nodes"]
        metrics = batch_metrics(
            [n["peakFluxJy"] for n in nodes], [n["peakFluxErrJy"] for n in nodes], [n["mjd"] for n in nodes]
        )
        assert source["v"] == pytest.approx(metrics.v, rel=1e-9)
        assert source["eta"] == pytest.approx(metrics.eta, rel=1e-9)
        assert source["chi2Nu"] == pytest.approx(metrics.chi2_nu, rel=1e-9)
        assert source["vsAbsSignificantMax"] == pytest.approx(metrics.vs_abs_max, rel=1e-9)
        assert source["mAbsSignificantMax"] == pytest.approx(metrics.m_abs_max, rel=1e-9)
