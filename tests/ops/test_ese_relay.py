"""ESE candidate events reach the server's subscribers when detection runs in a job subprocess.

With the default in-process ``memory://`` bus the ``ese-detect`` job's process has no way to
the server's subscribers; the job keeps its events in its result and the server's job pool
republishes them (``server.job_pool``, ``dsa110.ops.ese_relay``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select

from dsa110.auth.identity import Role
from dsa110.db.tables import images, jobs
from dsa110.events.channels import ESE_CANDIDATE
from dsa110.ops.ese_relay import MAX_RELAYED_EVENTS, RELAY_KEY, Keeper
from dsa110.ops.queue.protocol import MAX_LINE_CHARS
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.live.conftest import TransportWs, running
from tests.ops.ese_curves import FWHM_PER_SIGMA, seed_curves
from tests.waiting import eventually

INGEST = """mutation($i: Int!, $m: [MeasurementInput!]!) {
  ingestMeasurements(imageId: $i, measurements: $m) { nMeasurements detectionJobId } }"""


async def test_an_ingest_through_the_api_reaches_an_ese_subscriber(empty_db_url: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=empty_db_url,
        metrics_interval_s=0,
        webhook_poll_s=0,
        job_slots=1,
        job_poll_s=0.1,
    )
    assert settings.events_url.startswith("memory")
    rng = np.random.default_rng(5)
    t = 60000.0 + np.arange(120) * 1.0
    e = np.full(t.size, 0.01)
    dip = (
        1
        - 0.4 * np.exp(-0.5 * ((t - 60060) * FWHM_PER_SIGMA / 25.0) ** 2)
        + 0.01 * rng.standard_normal(t.size)
    )
    steady = 1 + 0.01 * rng.standard_normal(t.size)
    async with running(settings) as live:
        # The year so far is in the database; the last image arrives through the API.
        pks = await seed_curves(live.engine, [(dip[:-1], e[:-1]), (steady[:-1], e[:-1])], t[:-1])
        async with live.engine.begin() as conn:
            image = (
                await conn.execute(
                    insert(images)
                    .values(
                        path="/last.fits", type="image", created_at=datetime.now(UTC), mid_mjd=float(t[-1])
                    )
                    .returning(images.c.id)
                )
            ).scalar_one()
        admin = await key_headers(live.engine, Role.ADMIN, "ingest")
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe(
                "ese",
                "subscription { eseCandidates(minSigma: 0) { candidateId sourceId kind"
                " candidate { phase kind falseAlarmProbability redNoiseRms } } }",
            )
            await eventually(lambda: live.app.state.live.subscriber_count == 1)
            rows = [
                {"sourceId": f"T{i}", "peakFluxJy": float(f[-1]), "peakFluxErrJy": 0.01}
                for i, f in enumerate((dip, steady))
            ]
            done = await live.http.post(
                "/graphql", json={"query": INGEST, "variables": {"i": image, "m": rows}}, headers=admin
            )
            assert done.status_code == 200 and "errors" not in done.json(), done.text
            job_id = done.json()["data"]["ingestMeasurements"]["detectionJobId"]
            assert job_id is not None  # detection runs in the ese-detect job, not in the request
            got = (await client.next_data("ese", wait_s=60.0))["eseCandidates"]
            assert got["sourceId"] == "T0" and got["kind"] == "new"
            # The relayed event is rebuilt from the row: the same candidate as the job's own.
            assert (got["candidate"]["phase"], got["candidate"]["kind"]) == ("CONFIRMED", "DIP")
            assert got["candidate"]["falseAlarmProbability"] > 0 and got["candidate"]["redNoiseRms"] >= 0
        async with live.engine.connect() as conn:
            job = (await conn.execute(select(jobs.c.state, jobs.c.result).where(jobs.c.id == job_id))).one()
        assert job.state == "done" and job.result["n_new"] == 1
        # The job kept a compact record (candidate, event, previous phase, alert), not payloads.
        assert [r[1:3] for r in job.result["relay_events"]] == [["new", None]]
        assert job.result["relay_dropped"] == 0 and pks


async def test_the_kept_events_fit_on_one_result_line() -> None:
    keeper = Keeper()
    big = 10**9  # a large deployment's primary keys
    for i in range(MAX_RELAYED_EVENTS + 3):
        payload = {"candidate_pk": big + i, "event": "confirmed", "from_phase": "ongoing", "alert_pk": big}
        await keeper(ESE_CANDIDATE, payload)
    await keeper("job.state", {"job_id": 1})  # not an ESE event: not kept
    kept = keeper.result()
    assert len(kept[RELAY_KEY]) == MAX_RELAYED_EVENTS and kept["relay_dropped"] == 3
    assert kept[RELAY_KEY][0] == [big, "confirmed", "ongoing", big]
    result = {"n_sources": 20_000, "n_tested": 20_000, "n_alerts": big, "n_new": big, **kept}
    line = "@@result " + json.dumps(result)
    assert len(line) < MAX_LINE_CHARS  # the queue cuts longer lines, and the result with them
