"""Jobs and batches through REST and GraphQL, run by the server's own worker pool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from dsa110.auth.identity import Role
from dsa110.settings import Settings
from tests.compat.conftest import Graph, assert_envelope
from tests.credentials import key_headers
from tests.live.conftest import running
from tests.waiting import eventually


def _settings(url: str, root: Path, slots: int = 2) -> Settings:
    return Settings(
        data_dir=root,
        database_url=url,
        metrics_interval_s=0,
        webhook_poll_s=0,
        job_slots=slots,
        job_poll_s=0.1,
    )


async def _status(http: httpx.AsyncClient, job_id: int) -> str:
    return str((await http.get(f"/api/jobs/id/{job_id}")).json()["status"])


async def test_submit_run_read_and_follow_the_log_over_rest(empty_db_url: str, tmp_path: Path) -> None:
    async with running(_settings(empty_db_url, tmp_path)) as live:
        http = live.http
        ops = await key_headers(live.engine, Role.OPERATOR, "night-ops")
        refused = await http.post("/api/control/jobs/create", json={"job_type": "noop"})
        assert refused.status_code == 401  # writes need credentials
        bad = await http.post(
            "/api/control/jobs/create", json={"job_type": "sleep", "parameters": {"seconds": -1}}, headers=ops
        )
        assert bad.status_code == 400 and bad.json()["code"] == "BAD_JOB_PARAMS", bad.text
        unknown = await http.post("/api/control/jobs/create", json={"job_type": "teleport"}, headers=ops)
        assert unknown.status_code == 422
        assert (await http.get("/api/jobs")).json()["total"] == 0  # nothing was queued
        created = await http.post(
            "/api/control/jobs/create",
            json={"job_type": "sleep", "parameters": {"seconds": 0.3, "steps": 3}},
            headers=ops,
        )
        assert created.status_code == 200, created.text
        body = created.json()
        # The answer reads the job back after its commit; this server's own pool may have
        # claimed it by then (seen under load), so it is queued or already running.
        assert body["status"] in ("pending", "running") and body["message"] == "Job created successfully"
        job_id = body["job_id"]
        assert body["job"]["created_by"] == "key:night-ops"
        # The legacy SSE log: the log so far, new lines as they come, then `complete`.
        async with http.stream("GET", f"/api/jobs/id/{job_id}/logs") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            text = ""
            async for chunk in stream.aiter_text():
                text += chunk
                if "event: complete" in text:
                    break
        events = [e for e in text.split("\n\n") if e.strip()]
        logs = "".join(json.loads(e.removeprefix("data: "))["logs"] for e in events if e.startswith("data: "))
        assert "step 3 of 3" in logs and "[queue] done" in logs
        assert events[-1] == 'event: complete\ndata: {"status":"done"}'
        detail = (await http.get(f"/api/jobs/id/{job_id}")).json()
        assert detail["status"] == "done", detail
        assert detail["type"] == "sleep" and detail["progress"] == 1.0
        assert detail["finished_at"] == detail["completed_at"] and "step 3 of 3" in detail["logs"]
        listed = (await http.get("/api/jobs", params={"status": "completed"})).json()
        assert [j["id"] for j in listed["jobs"]] == [job_id] == [j["id"] for j in listed["items"]]
        assert (await http.get("/api/jobs", params={"status": "nope"})).status_code == 422
        missing = await http.get("/api/jobs/id/999999/logs")
        assert 'event: error\ndata: {"message":"Job not found"}' in missing.text
        for bad in ("abc", "-1", "99999999999"):  # refused as the job's own path refuses them
            refused = await http.get(f"/api/jobs/id/{bad}/logs")
            assert_envelope(refused, 422, "VALIDATION_ERROR")
            assert refused.json() == (await http.get(f"/api/jobs/id/{bad}")).json()
        health = (await http.get("/api/jobs/healthz")).json()
        assert health["db_ok"] and {"noop", "sleep", "fail"} <= set(health["kinds"])
        assert isinstance(health["casa_ok"], bool) and health["disk"]["free"] > 0


async def test_cancel_and_retry_over_rest_and_graphql(empty_db_url: str, tmp_path: Path) -> None:
    async with running(_settings(empty_db_url, tmp_path)) as live:
        http = live.http
        ops = await key_headers(live.engine, Role.OPERATOR, "ops")
        viewer = await key_headers(live.engine, Role.VIEWER, "viewer")
        submit = (
            "mutation { submitJob(kind: SLEEP, params: {seconds: 60, steps: 60}) { jobId state createdBy } }"
        )
        assert (await http.post("/graphql", json={"query": submit}, headers=viewer)).status_code == 403
        made = (await http.post("/graphql", json={"query": submit}, headers=ops)).json()["data"]["submitJob"]
        # The answer is the job as it is now: the server's job pool may have claimed it already.
        assert made["state"] in ("PENDING", "RUNNING") and made["createdBy"] == "key:ops"
        job_id = made["jobId"]

        async def running_now() -> bool:
            return await _status(http, job_id) == "running"

        await eventually(running_now, 30)
        cancelled = await http.post(f"/api/jobs/id/{job_id}/cancel", headers=ops)
        assert cancelled.status_code == 200 and cancelled.json()["cancel_requested_by"] == "key:ops"

        async def gone() -> bool:
            return await _status(http, job_id) == "cancelled"

        await eventually(gone, 30)
        again = await http.post(f"/api/jobs/id/{job_id}/retry", headers=ops)
        # Queued again; as with a submission, the answer reads the job after its commit and the
        # server's pool may have claimed it by then (CI's run saw `running`).
        assert again.status_code == 200 and again.json()["status"] in ("pending", "running"), again.text
        assert again.json()["message"] == "Job queued again" and again.json()["error"] is None, again.text
        query = f"mutation {{ cancelJob(jobId: {job_id}) {{ state }} }}"
        await http.post("/graphql", json={"query": query}, headers=ops)
        await eventually(gone, 30)
        done_twice = await http.post(f"/api/jobs/id/{job_id}/cancel", headers=ops)
        assert done_twice.status_code == 200  # cancelling a cancelled job answers it as it is
        kinds = (await http.post("/graphql", json={"query": "{ jobKinds { name maxAttempts } }"})).json()
        assert {"noop", "sleep", "fail"} <= {k["name"] for k in kinds["data"]["jobKinds"]}


async def test_batches_per_item_state_retry_and_cancel(empty_db_url: str, tmp_path: Path) -> None:
    async with running(_settings(empty_db_url, tmp_path, slots=2)) as live:
        http = live.http
        ops = await key_headers(live.engine, Role.OPERATOR, "ops")
        create = """mutation($items: [BatchItemInput!]!) {
          createBatch(kind: FAIL, params: {message: "shared"}, items: $items) { batchId state nItems }
        }"""
        items = [{"label": "a", "params": {"exit_code": 3}}, {"label": "b", "params": {"exit_code": 0}}]
        bad = (
            await http.post("/graphql", json={"query": create, "variables": {"items": items}}, headers=ops)
        ).json()
        assert (
            bad["errors"][0]["extensions"]["code"] == "BAD_JOB_PARAMS"
            and "item 1 (b)" in bad["errors"][0]["message"]
        )
        assert (await http.get("/api/batch")).json()["batches"] == []  # nothing queued
        items[1]["params"]["exit_code"] = 4
        made = (
            await http.post("/graphql", json={"query": create, "variables": {"items": items}}, headers=ops)
        ).json()
        batch_id = made["data"]["createBatch"]["batchId"]

        async def settled(state: str) -> bool:
            return (await http.get(f"/api/batch/{batch_id}")).json()["status"] == state

        await eventually(lambda: settled("failed"), 30)
        detail = (await http.get(f"/api/batch/{batch_id}")).json()
        assert detail["failed_items"] == 2 and detail["total_items"] == detail["n_jobs"] == 2
        assert [i["item"] for i in detail["items"]] == ["a", "b"]
        assert [j["params"] for j in detail["jobs"]] == [
            {"exit_code": 3, "message": "shared"},
            {"exit_code": 4, "message": "shared"},
        ]
        tried_before = [j["attempts"] for j in detail["jobs"]]
        retried = await http.post(f"/api/batch/{batch_id}/retry", headers=ops)
        # The answer is the batch as read after the commit: the pool may have run the two
        # failing items again already, so any state but done is what it says.
        assert retried.status_code == 200 and retried.json()["message"] == "Failed items queued again"
        assert retried.json()["status"] in ("pending", "running", "failed")

        async def ran_again() -> bool:
            now = (await http.get(f"/api/batch/{batch_id}")).json()
            tried = [j["attempts"] for j in now["jobs"]]
            return now["status"] == "failed" and tried == [n + 1 for n in tried_before]

        await eventually(ran_again, 30)
        # A running batch: cancel stops its running children and its queued ones.
        slow = await http.post(
            "/graphql",
            json={
                "query": "mutation($items: [BatchItemInput!]!) { createBatch(kind: SLEEP, items: $items) { batchId } }",
                "variables": {"items": [{"label": str(i), "params": {"seconds": 60}} for i in range(3)]},
            },
            headers=ops,
        )
        slow_id = slow.json()["data"]["createBatch"]["batchId"]

        async def some_running() -> bool:
            return (await http.get(f"/api/batch/{slow_id}")).json()["running_items"] >= 1

        await eventually(some_running, 30)
        stopped = await http.post(f"/api/batch/{slow_id}/cancel", headers=ops)
        assert stopped.status_code == 200 and stopped.json()["message"] == "Batch job cancelled"

        async def all_cancelled() -> bool:
            shaped = (await http.get(f"/api/batch/{slow_id}")).json()
            return shaped["status"] == "cancelled" and shaped["cancelled_items"] == 3

        await eventually(all_cancelled, 30)
        again = await http.post(f"/api/batch/{slow_id}/cancel", headers=ops)
        assert again.status_code == 409 and again.json()["code"] == "CONFLICT"


async def test_every_rest_batch_form_queues_one_child_per_item(empty_db_url: str, tmp_path: Path) -> None:
    """Every form parses; a kind refuses items that name no real input with a coded error, nothing queued."""
    async with running(_settings(empty_db_url, tmp_path, slots=0)) as live:
        http = live.http
        ops = await key_headers(live.engine, Role.OPERATOR, "ops")
        bodies: dict[str, Any] = {
            "calibrate": {"ms_paths": ["/ms/a.ms", "/ms/b.ms"], "parameters": {"refant": "103"}},
            "apply": {"job_type": "apply", "params": {"ms_paths": ["/ms/a.ms"], "params": {}}},
            "image": {"ms_paths": ["/ms/a.ms"]},
            "convert": {
                "time_windows": [{"start_time": "2025-10-24T14:00:00", "end_time": "2025-10-24T14:05:00"}]
            },
            "publish": {"data_ids": ["x", "y"]},
            "photometry": {"fits_paths": ["/i/a.fits"], "coordinates": [{"ra_deg": 1.0, "dec_deg": 2.0}]},
            "ese-detect": {},
        }
        for path, body in bodies.items():
            answer = await http.post(f"/api/batch/{path}", json=body, headers=ops)
            assert answer.status_code in (200, 400), (path, answer.text)
            if answer.status_code == 400:
                assert answer.json()["code"] in ("UNKNOWN_JOB_KIND", "BAD_JOB_PARAMS"), (path, answer.text)
        wrong = await http.post(
            "/api/batch/image", json={"job_type": "apply", "ms_paths": ["/a"]}, headers=ops
        )
        assert wrong.status_code == 422
        empty = await http.post("/api/batch/image", json={"ms_paths": []}, headers=ops)
        assert empty.status_code == 422


async def test_the_documents_ms_paths_form_queues_one_job_per_ms(
    api: httpx.AsyncClient, graph: Graph
) -> None:
    """The API document's body for POST /jobs/{calibrate,apply,image} and /control/jobs/create is
    `{"ms_paths": [...], "parameters": {...}}`; it used to be refused as an unknown parameter."""
    found = await graph.data("{ measurementSets(first: 50) { nodes { path file { nRows } } } }")
    [ms, *_] = [n["path"] for n in found["measurementSets"]["nodes"] if n["file"] is not None]
    before = (await api.get("/api/jobs")).json()["total"]
    image = await api.post("/api/jobs/image", json={"ms_paths": [ms], "parameters": {"imsize": 64}})
    assert image.status_code == 200, image.text
    assert image.json()["ms_path"] == ms and image.json()["ms_paths"] == [ms]
    assert image.json()["params"]["ms_path"] == ms and "ms_paths" not in image.json()["params"]
    created = await api.post(
        "/api/control/jobs/create", json={"job_type": "calibrate", "ms_paths": [ms], "parameters": {}}
    )
    assert created.status_code == 200, created.text
    assert created.json()["job"]["ms_path"] == ms
    # A job works on one MS: several are refused (a batch queues one job each), nothing queued.
    several = await api.post("/api/jobs/image", json={"ms_paths": [ms, ms]})
    body = assert_envelope(several, 400, "BAD_JOB_PARAMS")
    assert "/api/batch/" in body["error"] and body["details"] == {"field": "ms_paths"}
    other = "/elsewhere/x.ms"
    assert_envelope(await api.post("/api/jobs/image", json={"ms_path": other, "ms_paths": [ms]}), 400)
    assert (await api.get("/api/jobs")).json()["total"] == before + 2
