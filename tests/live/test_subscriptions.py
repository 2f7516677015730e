"""Each subscription over graphql-transport-ws: initial state, then pushes driven by bus events."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert, select

from dsa110.auth.identity import Role
from dsa110.db.tables import ese_candidates, images, measurements
from dsa110.events import ESE_CANDIDATE, GROUP_STATE, MEASUREMENTS_ADDED
from dsa110.ops import jobs
from dsa110.ops.ese_detect import run_detection
from dsa110.ops.metrics import MetricsSampler
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.live.conftest import T0, TransportWs, running, seed
from tests.ops.ese_curves import dip_curve, seed_curves
from tests.waiting import eventually

FAILED_GROUP = "2025-10-24T14:05:00"
STATUS = "subscription { pipelineStatus { queue { total pending failed inProgress } matchedRecent recentGroups { groupId state } } }"


async def test_pipeline_status_pushes_the_new_counts_after_a_group_changes(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        async with live.ws() as ws:
            client = TransportWs(ws)
            assert (await client.init())["type"] == "connection_ack"
            await client.subscribe("s", STATUS)
            first = (await client.next_data("s"))["pipelineStatus"]
            assert first["queue"] == {"total": 3, "pending": 0, "failed": 1, "inProgress": 1}
            assert first["matchedRecent"] == 1
            assert [g["groupId"] for g in first["recentGroups"]] == [
                "2025-10-24T14:10:00",
                FAILED_GROUP,
                "2025-10-24T14:00:00",
            ]
            await jobs.reprocess_group(live.engine, FAILED_GROUP, publish=live.publish)
            second = (await client.next_data("s"))["pipelineStatus"]
            assert second["queue"] == {"total": 3, "pending": 1, "failed": 0, "inProgress": 1}
            assert second["recentGroups"][1] == {"groupId": FAILED_GROUP, "state": "PENDING"}


async def test_a_burst_of_group_events_is_coalesced(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe("s", STATUS)
            await client.next_data("s")
            for i in range(20):
                await live.publish(GROUP_STATE, {"group_pk": 1, "seq": i})
            await jobs.reprocess_group(live.engine, FAILED_GROUP, publish=live.publish)
            while (await client.next_data("s"))["pipelineStatus"]["queue"]["pending"] != 1:
                pass
            # 21 events, far fewer recomputations: one per coalescing window.
            assert live.app.state.live.results_produced() < 21


async def test_identical_subscriptions_share_one_producer(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        ids = await seed(live.engine)
        registry = live.app.state.live
        query = "subscription($s: Float!) { eseCandidates(minSigma: $s) { candidateId sourceId significance kind } }"
        async with live.ws() as a, live.ws() as b, live.ws() as c:
            clients = [TransportWs(ws) for ws in (a, b, c)]
            for client in clients:
                await client.init()
            await clients[0].subscribe("x", query, {"s": 5.0})
            await clients[1].subscribe("y", query, {"s": 5.0})
            await clients[2].subscribe("z", query, {"s": 6.5})
            await eventually(lambda: registry.subscriber_count == 3)
            assert registry.producer_count == 2  # two distinct variable sets, three clients
            await live.publish(ESE_CANDIDATE, {"event": "new", "candidate_pk": ids["candidate_pk"]})
            for client, op in zip(clients, "xyz", strict=True):
                got = (await client.next_data(op))["eseCandidates"]
                assert got == {
                    "candidateId": ids["candidate_pk"],
                    "sourceId": "NVSS J123456.7+420312",
                    "significance": 7.0,
                    "kind": "new",
                }
            assert registry.results_produced() == 2  # executed once per producer, not per client


async def test_ese_candidates_below_min_sigma_are_not_sent(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        ids = await seed(live.engine)
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe(
                "hi", "subscription { eseCandidates(minSigma: 8) { candidateId status kind } }"
            )
            await client.subscribe("lo", "subscription { eseCandidates { candidateId status kind } }")
            await eventually(lambda: live.app.state.live.subscriber_count == 2)
            await live.publish(ESE_CANDIDATE, {"event": "new", "candidate_pk": ids["candidate_pk"]})
            assert (await client.next_data("lo"))["eseCandidates"]["kind"] == "new"
            await client.send({"id": "hi", "type": "complete"})
            await client.send({"id": "ping", "type": "ping"})
            # The 7-sigma candidate never reached "hi": the next message is the pong.
            assert (await client.receive())["type"] == "pong"


async def test_an_ese_candidate_event_shows_its_phase_kind_probability_and_red_noise_rms(
    live_settings: Settings,
) -> None:
    """What a follow-up decision needs arrives with the event: the candidate's phase, what
    the detector saw (its ``kind``; the event's own ``kind`` says what happened), the
    false-alarm probability and the red-noise rms that rated it. Published by the detector
    itself; a candidate stored before ``red_rms`` was recorded shows null there."""
    query = (
        "subscription { eseCandidates(minSigma: 0) { candidateId kind"
        " candidate { candidateId phase kind falseAlarmProbability redNoiseRms } } }"
    )
    t, flux, err = dip_curve()
    steady = 1 + 0.02 * np.random.default_rng(5).standard_normal(t.size)
    async with running(live_settings) as live:
        dip_pk, steady_pk = await seed_curves(live.engine, [(flux, err), (steady, err)], t)
        async with live.engine.begin() as conn:  # a stale ongoing candidate from before 0020
            await conn.execute(
                insert(ese_candidates).values(
                    source_pk=steady_pk, status="active", score=1.2, significance=6.0, start_mjd=60010.0,
                    end_mjd=60020.0, depth=0.3, baseline_flux_jy=1.0, min_flux_jy=0.7,
                    detector_version="ese-drw-3.5", flagged_at=T0, updated_at=T0, phase="ongoing",
                    kind="ongoing", false_alarm_probability=0.002,
                )
            )  # fmt: skip
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe("e", query)
            await eventually(lambda: live.app.state.live.subscriber_count == 1)
            run = await run_detection(live.engine, [dip_pk, steady_pk], publish=live.publish, force=True)
            assert len(run.new_candidate_pks) == 1 and len(run.changed_candidate_pks) == 1
            got = [(await client.next_data("e"))["eseCandidates"] for _ in range(2)]
        async with live.engine.connect() as conn:
            rows = {r["id"]: r for r in (await conn.execute(select(ese_candidates))).mappings()}
    by_kind = {g["kind"]: g for g in got}
    assert set(by_kind) == {"new", "rejected"}
    new, rejected = by_kind["new"], by_kind["rejected"]
    stored = rows[new["candidateId"]]
    assert new["candidate"] == {
        "candidateId": new["candidateId"],
        "phase": "CONFIRMED",
        "kind": "DIP",
        "falseAlarmProbability": pytest.approx(stored["false_alarm_probability"]),
        "redNoiseRms": pytest.approx(stored["red_rms"]),
    }
    assert new["candidate"]["falseAlarmProbability"] > 0 and new["candidate"]["redNoiseRms"] >= 0
    assert rejected["candidate"] == {
        "candidateId": rejected["candidateId"],
        "phase": "REJECTED",
        "kind": "ONGOING",
        "falseAlarmProbability": 0.002,
        "redNoiseRms": None,
    }


async def test_job_updates_and_logs_follow_a_job_to_its_end(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        job = await jobs.create_job(live.engine, "image", {"imsize": 2048})
        await jobs.append_job_log(live.engine, job["id"], "=== Starting imaging ===", publish=live.publish)
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe(
                "u",
                "subscription($j: Int) { jobUpdates(jobId: $j) { jobId state startedAt } }",
                {"j": job["id"]},
            )
            await client.subscribe(
                "l",
                "subscription($j: Int!) { jobLogs(jobId: $j) { jobId state finished lines { lineId line } } }",
                {"j": job["id"]},
            )
            assert (await client.next_data("u"))["jobUpdates"] == {
                "jobId": job["id"],
                "state": "PENDING",
                "startedAt": None,
            }
            snapshot = (await client.next_data("l"))["jobLogs"]
            assert [line["line"] for line in snapshot["lines"]] == ["=== Starting imaging ==="]
            assert snapshot["finished"] is False
            await jobs.set_job_state(live.engine, job["id"], "running", publish=live.publish)
            running_job = (await client.next_data("u"))["jobUpdates"]
            assert running_job["state"] == "RUNNING" and running_job["startedAt"] is not None
            await jobs.append_job_log(
                live.engine, job["id"], "tclean: 1000 iterations\nimage written", publish=live.publish
            )
            lines: list[str] = []
            while len(lines) < 2:
                batch = (await client.next_data("l"))["jobLogs"]
                lines += [line["line"] for line in batch["lines"]]
            assert lines == ["tclean: 1000 iterations", "image written"]
            await jobs.set_job_state(live.engine, job["id"], "done", publish=live.publish)
            assert (await client.next_data("u"))["jobUpdates"]["state"] == "DONE"
            final: dict[str, Any] = {}
            while not final.get("finished"):
                final = (await client.next_data("l"))["jobLogs"]
            assert final["state"] == "DONE"
            # jobLogs ends with its job: the server completes the operation.
            assert await client.for_op("l") == {"id": "l", "type": "complete"}


async def test_logs_of_a_finished_job_are_sent_once_then_complete(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        job = await jobs.create_job(live.engine, "calibrate")
        await jobs.append_job_log(live.engine, job["id"], ["a", "b"])
        await jobs.set_job_state(live.engine, job["id"], "failed", error="ERROR: no calibrator")
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe(
                "l", f"subscription {{ jobLogs(jobId: {job['id']}) {{ finished lines {{ line }} }} }}"
            )
            assert (await client.next_data("l"))["jobLogs"] == {
                "finished": True,
                "lines": [{"line": "a"}, {"line": "b"}],
            }
            assert await client.for_op("l") == {"id": "l", "type": "complete"}
        await eventually(lambda: live.app.state.live.producer_count == 0)


async def test_group_updates_carry_the_changed_group(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe(
                "g",
                "subscription($ids: [String!]) { groupUpdates(groupIds: $ids) { groupId state retryCount presentSubbands } }",
                {"ids": [FAILED_GROUP]},
            )
            await eventually(lambda: live.app.state.live.subscriber_count == 1)
            await jobs.reprocess_group(live.engine, FAILED_GROUP, publish=live.publish)
            assert (await client.next_data("g"))["groupUpdates"] == {
                "groupId": FAILED_GROUP,
                "state": "PENDING",
                "retryCount": 1,
                "presentSubbands": 4,
            }


async def test_measurements_added_reports_only_watched_sources(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        ids = await seed(live.engine)
        async with live.engine.begin() as conn:
            image_pk = (
                await conn.execute(
                    insert(images)
                    .values(path="/img/a.fits", type="5min", created_at=T0, mid_mjd=60972.6, pbcor=True)
                    .returning(images.c.id)
                )
            ).scalar_one()
            await conn.execute(
                insert(measurements).values(
                    source_pk=ids["source_pk"],
                    image_pk=image_pk,
                    mjd=60972.6,
                    ra_deg=188.73625,
                    dec_deg=42.05333,
                    peak_flux_jy=0.0121,
                    peak_flux_err_jy=0.0004,
                    forced=True,
                )
            )
        doc = "subscription($f: WatchFilter!) { measurementsAdded(filter: $f) { image { path } measurements { peakFluxJy source { sourceId } } } }"
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe(
                "cone", doc, {"f": {"cone": {"raDeg": 188.7363, "decDeg": 42.0533, "radiusArcsec": 30}}}
            )
            await client.subscribe("name", doc, {"f": {"sourceIds": ["NVSS J123456.7+420312"]}})
            await client.subscribe(
                "far", doc, {"f": {"cone": {"raDeg": 10.0, "decDeg": -30.0, "radiusArcsec": 30}}}
            )
            await eventually(lambda: live.app.state.live.subscriber_count == 3)
            await live.publish(
                MEASUREMENTS_ADDED,
                {"image_pk": image_pk, "n_measurements": 1, "source_pks": [ids["source_pk"]]},
            )
            expected = {
                "image": {"path": "/img/a.fits"},
                "measurements": [{"peakFluxJy": 0.0121, "source": {"sourceId": "NVSS J123456.7+420312"}}],
            }
            assert (await client.next_data("cone"))["measurementsAdded"] == expected
            assert (await client.next_data("name"))["measurementsAdded"] == expected
            await client.send({"id": "p", "type": "ping"})
            assert (await client.receive())["type"] == "pong"  # nothing for the far cone


async def test_system_metrics_query_history_and_subscription(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        sampler = MetricsSampler(live.engine, live.app.state.bus, mounts=["/"])
        first = await sampler.sample_once()
        query = "{ systemMetrics { cpuPercent memoryTotalBytes disks { mount } } systemMetricsHistory(limit: 5) { sampledAt } }"
        body = (await live.http.post("/graphql", json={"query": query})).json()
        assert body["data"]["systemMetrics"]["memoryTotalBytes"] == float(first.memory_total_bytes)
        assert body["data"]["systemMetrics"]["disks"] == [{"mount": "/"}]
        assert len(body["data"]["systemMetricsHistory"]) == 1
        bad = (
            await live.http.post(
                "/graphql", json={"query": "{ systemMetricsHistory(limit: 0) { cpuPercent } }"}
            )
        ).json()
        assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        host = first.host
        by_host = (
            await live.http.post(
                "/graphql",
                json={
                    "query": "query($h: String) { systemMetricsHosts systemMetrics(host: $h) { host } "
                    'elsewhere: systemMetrics(host: "no-such-host") { host } }',
                    "variables": {"h": host},
                },
            )
        ).json()["data"]
        assert by_host == {"systemMetricsHosts": [host], "systemMetrics": {"host": host}, "elsewhere": None}
        too_long = (
            await live.http.post(
                "/graphql", json={"query": f'{{ systemMetrics(host: "{"x" * 256}") {{ host }} }}'}
            )
        ).json()
        assert too_long["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe("m", "subscription { systemMetrics { sampledAt memoryPercent } }")
            initial = (await client.next_data("m"))["systemMetrics"]
            second = await sampler.sample_once()
            pushed = (await client.next_data("m"))["systemMetrics"]
            assert pushed != initial
            assert pushed["memoryPercent"] == second.memory_percent
        await sampler.stop()


async def test_each_event_reads_fresh_rows(live_settings: Settings) -> None:
    """The producer's context lives as long as the subscription; its loaders must not."""
    async with running(live_settings) as live:
        job = await jobs.create_job(live.engine, "convert")
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe("u", "subscription { jobUpdates { jobId state } }")
            await eventually(lambda: live.app.state.live.subscriber_count == 1)
            for state in ("running", "done"):
                await jobs.set_job_state(live.engine, job["id"], state, publish=live.publish)
                assert (await client.next_data("u"))["jobUpdates"]["state"] == state.upper()


async def test_legacy_graphql_ws_protocol_subscribes_too(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        async with live.ws(protocol="graphql-ws") as ws:
            client = TransportWs(ws)
            assert (await client.init())["type"] == "connection_ack"
            await client.send({"id": "1", "type": "start", "payload": {"query": STATUS}})
            message = await client.receive()
            while message["type"] == "ka":
                message = await client.receive()
            assert (
                message["type"] == "data"
                and message["payload"]["data"]["pipelineStatus"]["queue"]["total"] == 3
            )
            await jobs.reprocess_group(live.engine, FAILED_GROUP, publish=live.publish)
            message = await client.receive()
            while message["type"] == "ka":
                message = await client.receive()
            assert message["payload"]["data"]["pipelineStatus"]["queue"]["pending"] == 1
            await client.send({"id": "1", "type": "stop"})
            assert (await client.receive())["type"] in ("complete", "ka")


async def test_reprocess_mutation_publishes_to_subscribers(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        await seed(live.engine, live_settings.data_dir)  # real files: a job is queued
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe("g", "subscription { groupUpdates { groupId state } }")
            await eventually(lambda: live.app.state.live.subscriber_count == 1)
            mutation = "mutation($g: String!) { reprocessGroup(groupId: $g) { state retryCount } }"
            request = {"query": mutation, "variables": {"g": FAILED_GROUP}}
            operator = await key_headers(live.engine, Role.OPERATOR)
            body = (await live.http.post("/graphql", json=request, headers=operator)).json()
            assert body["data"]["reprocessGroup"] == {"state": "PENDING", "retryCount": 1}
            assert (await client.next_data("g"))["groupUpdates"] == {
                "groupId": FAILED_GROUP,
                "state": "PENDING",
            }
            again = (await live.http.post("/graphql", json=request, headers=operator)).json()
            assert again["errors"][0]["extensions"]["code"] == "CONFLICT"


async def _settle(condition: Any, attempts: int = 500) -> None:
    """Wait (yielding to the server's tasks) until ``condition()`` holds."""
    import asyncio

    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")
