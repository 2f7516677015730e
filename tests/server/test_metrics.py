"""``/metrics`` scraped and parsed with prometheus-client's own parser, in one process and several."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from dsa110.auth.identity import Role
from dsa110.db.engine import create_engine
from dsa110.db.tables import images, jobs
from dsa110.ops.ingest import detect_ese, ingest_image_measurements
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.databases import REDIS_URL, scratch_database
from tests.live.conftest import T0, running, seed
from tests.live.servers import server_process

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of ``name`` over the series whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


async def scrape(http: httpx.AsyncClient, **kwargs: Any) -> Samples:
    response = await http.get("/metrics", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def _jobs(engine: Any) -> None:
    """Two finished mosaic jobs (5 s and 100 s) and a pending one; durations worked out by hand."""
    async with engine.begin() as conn:
        for seconds, state in ((5.0, "done"), (100.0, "failed")):
            await conn.execute(
                insert(jobs).values(
                    type="mosaic",
                    state=state,
                    params={},
                    created_at=T0,
                    started_at=T0,
                    finished_at=T0 + timedelta(seconds=seconds),
                )
            )
        await conn.execute(insert(jobs).values(type="mosaic", state="pending", params={}, created_at=T0))


async def test_metrics_count_what_happened(empty_db_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0, webhook_poll_s=0)
    async with running(settings) as live:
        state = await seed(live.engine)
        await _jobs(live.engine)
        http = live.http
        before = await scrape(http)
        for _ in range(3):
            ok = await http.post("/graphql", json={"query": "query DashQueue { jobs { totalCount } }"})
            assert ok.status_code == 200
        # A failing operation is counted under its name too; one not seen before gets its
        # label from an authenticated caller (anonymous ones bring only valid operations').
        viewer = await key_headers(live.engine, Role.VIEWER)
        await http.post("/graphql", json={"query": "query DashBroken { nope }"}, headers=viewer)
        assert (await http.get("/api/sources/NVSS%20J999999.9%2B999999")).status_code == 404
        await live.publish("group.state", {"group_id": "x"})
        async with live.engine.begin() as conn:
            image = (
                await conn.execute(
                    insert(images)
                    .values(path="/img/m.fits", type="5min", created_at=T0, mid_mjd=60972.6)
                    .returning(images.c.id)
                )
            ).scalar_one()
        row = {"source_pk": state["source_pk"], "peak_flux_jy": 0.014, "peak_flux_err_jy": 0.0005}
        ingested = await ingest_image_measurements(live.engine, image, [row])
        # Ingest queues detection as a job (its own process and metrics); a full pass run in
        # this process, as the detectEse mutation does, is what this server counts.
        assert ingested.detection_job_id is not None
        await detect_ese(live.engine, [state["source_pk"]])
        async with live.ws() as ws:
            await ws.send_json({"type": "connection_init"})
            await ws.receive_json()
            during = await scrape(http)
        after = await scrape(http)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("dsa110_graphql_operations_total", operation="DashQueue", type="query", outcome="ok") == 3
    assert grew("dsa110_graphql_operations_total", operation="DashBroken", outcome="error") == 1
    assert grew("dsa110_graphql_operation_duration_seconds_count", operation="DashQueue") == 3
    assert grew("dsa110_errors_total", surface="graphql", code="GRAPHQL_VALIDATION_FAILED") == 1
    assert (
        grew("dsa110_http_requests_total", route="/api/sources/{source_id}", method="GET", status="404") == 1
    )
    assert grew("dsa110_errors_total", surface="http", code="NOT_FOUND") == 1
    assert grew("dsa110_http_request_duration_seconds_count", route="/graphql", method="POST") == 4
    assert grew("dsa110_bus_events_total", stage="published") >= 1
    assert value(during, "dsa110_open_connections", kind="websocket") >= 1
    assert grew("dsa110_ingested_measurements_total") == 1
    assert grew("dsa110_ingest_duration_seconds_count") == 1
    assert grew("dsa110_ese_detection_duration_seconds_count") == 1
    assert value(after, "dsa110_measurement_rows") == 1
    assert value(after, "dsa110_jobs", type="mosaic", state="pending") == 1
    assert value(after, "dsa110_groups", state="failed") == 1
    # Job run times, by hand: 5 s and 100 s -> one job <= 10 s, both <= 300 s, sum 105 s.
    assert value(after, "dsa110_job_duration_seconds_bucket", type="mosaic", le="1.0") == 0
    assert value(after, "dsa110_job_duration_seconds_bucket", type="mosaic", le="10.0") == 1
    assert value(after, "dsa110_job_duration_seconds_bucket", type="mosaic", le="300.0") == 2
    assert value(after, "dsa110_job_duration_seconds_count", type="mosaic") == 2
    assert value(after, "dsa110_job_duration_seconds_sum", type="mosaic") == pytest.approx(105.0, abs=1e-3)
    assert ("dsa110_db_pool_connections", (("state", "checked_out"),)) in after


async def test_client_chosen_operation_names_cannot_grow_the_series(
    empty_db_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0, webhook_poll_s=0)
    async with running(settings) as live:
        for i in range(260):
            name = f"Spam{uuid.uuid4().hex}{i}"
            await live.http.post("/graphql", json={"query": f"query {name} {{ __typename }}"})
        await live.http.post("/graphql", json={"query": "query { __typename }"})
        samples = await scrape(live.http)
    from dsa110 import telemetry

    names = {
        dict(labels).get("operation") for (n, labels) in samples if n == "dsa110_graphql_operations_total"
    }
    # The cap, plus `other` and `anonymous`; beside them only the server's own documents'
    # names (reserved: a set the code fixes), which other tests in this process ran.
    assert len(names - telemetry._reserved_names) <= telemetry.MAX_OPERATION_NAMES + 2
    assert not any(str(name).startswith("Spam") for name in telemetry._reserved_names)
    assert "other" in names and "anonymous" in names


async def test_anonymous_names_cannot_crowd_out_a_dashboards_names(
    empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anonymous spam takes at most its share of the labels, invalid anonymous operations take
    none; a dashboard with a key arriving later still gets its names (a failing one too), and
    names seen before keep theirs."""
    from dsa110 import telemetry

    monkeypatch.setattr(telemetry, "_seen_names", set())  # this process's labels so far: none
    monkeypatch.setattr(telemetry, "_anonymous_names", set())
    tag = uuid.uuid4().hex[:8]  # the registry outlives the test: these series are this run's
    early_page = f"EarlyPage{tag}"
    settings = Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0, webhook_poll_s=0)
    async with running(settings) as live:
        await live.http.post("/graphql", json={"query": f"query {early_page} {{ __typename }}"})
        for i in range(60):  # not valid against the schema: no label, however many
            await live.http.post("/graphql", json={"query": f"query Broken{tag}{i} {{ noSuchField }}"})
        for i in range(260):
            await live.http.post("/graphql", json={"query": f"query Flood{tag}{i} {{ __typename }}"})
        dashboard = await key_headers(live.engine, Role.VIEWER)
        dashboard_names = (f"DashboardSources{tag}", f"DashboardJobs{tag}", f"DashboardStale{tag}")
        for name, fields in zip(dashboard_names, ("__typename", "__typename", "noSuchField"), strict=True):
            answer = await live.http.post(
                "/graphql", json={"query": f"query {name} {{ {fields} }}"}, headers=dashboard
            )
            assert answer.status_code == 200, answer.text
        await live.http.post("/graphql", json={"query": f"query {early_page} {{ __typename }}"})
        samples = await scrape(live.http)
    names = {
        dict(labels).get("operation") for (n, labels) in samples if n == "dsa110_graphql_operations_total"
    }
    flood = {n for n in names if n and n.startswith(f"Flood{tag}")}
    assert len(flood) == telemetry.MAX_ANONYMOUS_OPERATION_NAMES - 1  # the early page took one
    assert not {n for n in names if n and n.startswith(f"Broken{tag}")}
    assert {*dashboard_names, early_page, "other"} <= names
    ok = {"type": "query", "outcome": "ok"}
    assert value(samples, "dsa110_graphql_operations_total", operation=early_page, **ok) == 2


def _operation_names(samples: Samples) -> set[str | None]:
    return {
        dict(labels).get("operation") for (n, labels) in samples if n == "dsa110_graphql_operations_total"
    }


async def test_the_rest_layers_names_cannot_be_crowded_out(
    empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The REST routes run their documents as their (anonymous) caller: a flood of free valid
    anonymous names sent first must not push ``RestHealth`` into ``other``."""
    from dsa110 import telemetry

    monkeypatch.setattr(telemetry, "_seen_names", set())
    monkeypatch.setattr(telemetry, "_anonymous_names", set())
    tag = uuid.uuid4().hex[:8]
    settings = Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0, webhook_poll_s=0)
    async with running(settings) as live:
        for i in range(telemetry.MAX_OPERATION_NAMES + 10):
            await live.http.post("/graphql", json={"query": f"query Flood{tag}{i} {{ __typename }}"})
        before = await scrape(live.http)
        health = await live.http.get("/api/health")
        assert health.status_code == 200, health.text
        sky = await live.http.get("/plots/skymap.png")  # a plot route's documents, not a REST route's
        assert sky.status_code == 200, sky.text
        after = await scrape(live.http)
    ok = {"operation": "RestHealth", "type": "query", "outcome": "ok"}
    assert value(after, "dsa110_graphql_operations_total", **ok) == (
        value(before, "dsa110_graphql_operations_total", **ok) + 1
    )
    sky_ok = {"operation": "PlotSkyEvents", "type": "query", "outcome": "ok"}
    assert value(after, "dsa110_graphql_operations_total", **sky_ok) == (
        value(before, "dsa110_graphql_operations_total", **sky_ok) + 1
    )
    flood = {n for n in _operation_names(after) if n and n.startswith(f"Flood{tag}")}
    assert len(flood) == telemetry.MAX_ANONYMOUS_OPERATION_NAMES  # the reserved names take no slot


async def test_an_anonymous_operation_failing_as_it_runs_is_named(
    empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Valid is parsed and validated, not ran without error: a field's error (what a REST
    404 is) does not make a valid anonymous operation's name ``other``."""
    from dsa110 import telemetry

    monkeypatch.setattr(telemetry, "_seen_names", set())
    monkeypatch.setattr(telemetry, "_anonymous_names", set())
    name = f"MissingNode{uuid.uuid4().hex[:8]}"
    settings = Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0, webhook_poll_s=0)
    async with running(settings) as live:
        answer = await live.http.post(
            "/graphql", json={"query": f'query {name} {{ node(id: "Tm9wZTox") {{ id }} }}'}
        )
        assert answer.json()["errors"][0]["extensions"]["code"] in {"NOT_FOUND", "BAD_USER_INPUT"}
        samples = await scrape(live.http)
    error = {"operation": name, "type": "query", "outcome": "error"}
    assert value(samples, "dsa110_graphql_operations_total", **error) == 1
    assert telemetry.operation_label(name, valid=False, authenticated=False) == name  # labelled since


def test_operation_label_says_who_asked_and_whether_it_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No defaults: a caller that forgets to say would label names it must not (or hide some)."""
    from dsa110 import telemetry

    monkeypatch.setattr(telemetry, "_seen_names", set())
    monkeypatch.setattr(telemetry, "_anonymous_names", set())
    monkeypatch.setattr(telemetry, "_reserved_names", set())
    label: Any = telemetry.operation_label
    with pytest.raises(TypeError):
        label("Unsaid")
    with pytest.raises(TypeError):
        label("Unsaid", True, True)
    with pytest.raises(TypeError):
        label("Unsaid", valid=True)
    assert telemetry.operation_label("Broken", valid=False, authenticated=False) == "other"
    telemetry.reserve_operation_names(["RestThing", "not a name"])
    for i in range(telemetry.MAX_OPERATION_NAMES):
        telemetry.operation_label(f"Flood{i}", valid=True, authenticated=i % 2 == 0)
    assert telemetry.operation_label("Late", valid=True, authenticated=True) == "other"
    assert telemetry.operation_label("RestThing", valid=False, authenticated=False) == "RestThing"
    assert telemetry.operation_label("not a name", valid=True, authenticated=True) == "other"


async def test_who_may_read_metrics(empty_db_url: str, tmp_path: Path) -> None:
    closed = Settings(
        data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0, webhook_poll_s=0, metrics_allow=()
    )
    async with running(closed) as live:
        refused = await live.http.get("/metrics")
        assert refused.status_code == 403 and refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        viewer = await key_headers(live.engine, Role.VIEWER)
        assert (await live.http.get("/metrics", headers=viewer)).status_code == 403
        operator = await key_headers(live.engine, Role.OPERATOR)
        await scrape(live.http, headers=operator)
        bad_key = await live.http.get("/metrics", headers={"Authorization": "Bearer d110_nope_nope"})
        assert bad_key.status_code == 401
    loopback = Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0, webhook_poll_s=0)
    async with running(loopback) as live:
        await scrape(live.http)  # the in-process client is 127.0.0.1: the default allows it


@pytest.mark.skipif(not REDIS_URL, reason="DSA110_TEST_REDIS_URL not set")
async def test_several_workers_are_summed(tmp_path: Path) -> None:
    assert REDIS_URL is not None
    async with scratch_database("sqlite", tmp_path) as url:
        engine = create_engine(url)
        try:
            await seed(engine)
        finally:
            await engine.dispose()
        namespace = f"t{uuid.uuid4().hex[:10]}"
        async with server_process(url, REDIS_URL, tmp_path, workers=2, namespace=namespace) as (base, _):
            pids: set[int] = set()
            sent = 0
            # New connections: the kernel spreads them over the workers; on a loaded machine
            # one worker may take a long run of them, so go on until both have answered.
            while sent < 40 or (len(pids) < 2 and sent < 400):
                async with httpx.AsyncClient(base_url=base) as http:
                    done = await http.post("/graphql", json={"query": "query Counted { __typename }"})
                    assert done.status_code == 200
                    sent += 1
                    pids.add((await http.get("/healthz")).json()["pid"])
            for _ in range(3):  # every worker answers with the sum, whichever is asked
                async with httpx.AsyncClient(base_url=base) as http:
                    samples = await scrape(http)
                assert total(samples, "dsa110_graphql_operations_total", operation="Counted") == sent
    assert len(pids) == 2
