"""Who may change what: every mutation and every writing REST route, as each kind of caller.

The role table (also in the README) is ``MUTATIONS`` and ``REST_WRITES`` below; the first
two tests fail when a mutation or a non-GET route is added without a declared role, or
with a role other than the table's. Each is then called over HTTP as anonymous (401
``UNAUTHENTICATED``), as a viewer (403 ``FORBIDDEN``) and as each role the table allows
(no refusal; the least such role gets a full success).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from astropy.io import fits
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from compat_rest.app import declared_routes
from compat_rest.routing import SAFE_METHODS, undeclared_routes
from dsa110.auth.identity import Role
from dsa110.db.enums import JobType
from dsa110.db.tables import (
    data_products,
    ese_status_changes,
    groups,
    images,
    jobs,
    measurement_sets,
    regions,
)
from dsa110.demo.images import tile_wcs
from dsa110.demo.radio_files import MsSpec, write_caltable, write_ms
from dsa110.ops.products import register_product
from dsa110.ops.queue import kinds
from dsa110.settings import Settings
from schema.permissions import field_roles
from schema.schema import build_schema
from tests.credentials import key_headers
from tests.live.conftest import T0, running, seed

FAILED_GROUP = "2025-10-24T14:05:00"
MS_GROUP = "2025-10-24T14:00:00"  # the seeded completed group; with files, its MS and bandpass table
MS_PATH = f"ms/{MS_GROUP}.ms"  # relative to the data directory, as a client may give it
FAILED_JOB = 1  # a seeded failed job, in the dead-letter queue (the first job: the tests' own follow)
RESOLVED_JOB = 2  # another: a resolved item is final, and a retried one is settled by its retry
SUBMITTED_JOB = 3  # the job submitJob queues (after the seeded ones), cancelled and retried
DLQ_VERBS = ("fail", "retry", "resolve")  # in this order: give up on FAILED_JOB, then retry it
DLQ_ITEM = {"fail": FAILED_JOB, "retry": FAILED_JOB, "resolve": RESOLVED_JOB}
STAGED = ("to-finalize", "to-publish", "to-retry")  # staged catalogs (with files); to-retry failed once
CIRCLE = {"type": "circle", "ra_deg": 188.7, "dec_deg": 42.05, "radius_arcsec": 30.0}
ROLES_FROM = {
    Role.VIEWER: (Role.VIEWER, Role.OPERATOR, Role.ADMIN),
    Role.OPERATOR: (Role.OPERATOR, Role.ADMIN),
    Role.ADMIN: (Role.ADMIN,),
}


STAGE_PATHS = ("calibrate", "apply", "image", "convert", "workflow", "ese-detect", "photometry", "mosaic")
BATCH_FORMS: dict[str, dict[str, Any]] = {
    "calibrate": {"ms_paths": ["/ms/a.ms"]},
    "apply": {"ms_paths": ["/ms/a.ms"]},
    "image": {"ms_paths": ["/ms/a.ms"]},
    "convert": {"time_windows": [{"start_time": "2025-10-24T14:00:00", "end_time": "2025-10-24T14:05:00"}]},
    "publish": {"data_ids": ["to-publish"]},
    "photometry": {"fits_paths": ["/i/a.fits"], "coordinates": [{"ra_deg": 1.0, "dec_deg": 2.0}]},
    "ese-detect": {},
}
STAGE_STANDINS = [
    kinds.JobKind(t.value, dict, lambda _i, _p: ["true"])
    for t in JobType
    if t.value not in ("noop", "sleep", "fail")
]


@dataclass(frozen=True)
class Call:
    role: Role
    document: str
    variables: dict[str, Any]


# The role table: mutation -> (least role, a call that succeeds on the seeded database).
MUTATIONS: dict[str, Call] = {
    "ingestMeasurements": Call(
        Role.ADMIN,
        "mutation($i: Int!, $m: [MeasurementInput!]!) "
        "{ ingestMeasurements(imageId: $i, measurements: $m, detect: false) { nMeasurements } }",
        {"i": 1, "m": [{"sourceId": "NVSS J123456.7+420312", "peakFluxJy": 0.0140, "peakFluxErrJy": 0.0005}]},
    ),
    "detectEse": Call(Role.OPERATOR, "mutation { detectEse { nSources } }", {}),
    "setEseCandidateStatus": Call(
        Role.OPERATOR,
        "mutation($c: Int!) { setEseCandidateStatus(candidateId: $c, status: INVESTIGATED) { status } }",
        {"c": 1},
    ),
    "createRegion": Call(
        Role.OPERATOR,
        'mutation($s: JSON!) { createRegion(imageId: 1, name: "box A", shape: $s) { regionId } }',
        {"s": CIRCLE},
    ),
    "updateRegion": Call(
        Role.OPERATOR, 'mutation { updateRegion(regionId: 1, name: "renamed") { regionId } }', {}
    ),
    "deleteRegion": Call(Role.OPERATOR, "mutation { deleteRegion(regionId: 2) }", {}),
    "reprocessGroup": Call(
        Role.OPERATOR, "mutation($g: String!) { reprocessGroup(groupId: $g) { state } }", {"g": FAILED_GROUP}
    ),
    "createMosaicJob": Call(
        Role.OPERATOR,
        'mutation { createMosaicJob(startTime: "2025-10-24T00:00:00Z", endTime: "2025-10-24T06:00:00Z",'
        ' name: "night-1") { jobId } }',
        {},
    ),
    # Jobs and batches (job 2 is the mosaic job above; batch 1 the first createBatch).
    "submitJob": Call(
        Role.OPERATOR, 'mutation { submitJob(kind: NOOP, params: {message: "hi"}) { jobId } }', {}
    ),
    "cancelJob": Call(Role.OPERATOR, f"mutation {{ cancelJob(jobId: {SUBMITTED_JOB}) {{ state }} }}", {}),
    "retryJob": Call(Role.OPERATOR, f"mutation {{ retryJob(jobId: {SUBMITTED_JOB}) {{ state }} }}", {}),
    "createBatch": Call(
        Role.OPERATOR,
        'mutation { createBatch(kind: NOOP, items: [{label: "a"}, {label: "b"}]) { batchId } }',
        {},
    ),
    "cancelBatch": Call(Role.OPERATOR, "mutation { cancelBatch(batchId: 1) { state } }", {}),
    "retryBatch": Call(Role.OPERATOR, "mutation { retryBatch(batchId: 1) { state } }", {}),
    # The streaming service (no supervisor in these tests: answer without waiting for one).
    "startStreaming": Call(Role.OPERATOR, "mutation { startStreaming(waitSeconds: 0) { desired } }", {}),
    "setStreamingConfig": Call(
        Role.OPERATOR,
        "mutation { setStreamingConfig(config: {poll_interval: 2}, waitSeconds: 0) { desired } }",
        {},
    ),
    "restartStreaming": Call(
        Role.OPERATOR, "mutation { restartStreaming(waitSeconds: 0) { generation } }", {}
    ),
    "stopStreaming": Call(Role.OPERATOR, "mutation { stopStreaming(waitSeconds: 0) { desired } }", {}),
    "createApiKey": Call(
        Role.ADMIN, 'mutation { createApiKey(name: "made-in-graph", role: VIEWER) { secret } }', {}
    ),
    "revokeApiKey": Call(Role.ADMIN, 'mutation { revokeApiKey(name: "to-revoke") { revokedAt } }', {}),
    "createWebhookSubscription": Call(
        Role.ADMIN,
        'mutation { createWebhookSubscription(name: "hook", url: "https://hooks.example.org/x",'
        " eventKinds: [ESE_CANDIDATE]) { secret } }",
        {},
    ),
    "updateWebhookSubscription": Call(
        Role.ADMIN,
        "mutation { updateWebhookSubscription(subscriptionId: 1, enabled: false) { enabled } }",
        {},
    ),
    "testWebhookSubscription": Call(
        Role.ADMIN, "mutation { testWebhookSubscription(subscriptionId: 1) { state } }", {}
    ),
    "deleteWebhookSubscription": Call(
        Role.ADMIN, "mutation { deleteWebhookSubscription(subscriptionId: 1) }", {}
    ),
    # Files, QA and the product lifecycle: each writes files or the registry, so operators.
    "discoverMeasurementSets": Call(Role.OPERATOR, "mutation { discoverMeasurementSets { scanned } }", {}),
    "generateQaNotebook": Call(
        Role.OPERATOR,
        "mutation($g: String!) { generateQaNotebook(groupId: $g) { path cells } }",
        {"g": MS_GROUP},
    ),
    "generateValidationReport": Call(
        Role.OPERATOR,
        "mutation { generateValidationReport(imageId: 1) { path validationTypes } }",
        {},
    ),
    "generateCalibrationPlots": Call(
        Role.OPERATOR,
        "mutation($p: String!) { generateCalibrationPlots(msPath: $p) { path } }",
        {"p": MS_PATH},
    ),
    "finalizeDataProduct": Call(
        Role.OPERATOR,
        'mutation { finalizeDataProduct(dataId: "to-finalize") { autoPublished product { finalizedBy } } }',
        {},
    ),
    "publishDataProduct": Call(
        Role.OPERATOR, 'mutation { publishDataProduct(dataId: "to-publish") { status publishedBy } }', {}
    ),
    "retryPublish": Call(Role.OPERATOR, 'mutation { retryPublish(dataId: "to-retry") { status } }', {}),
    "retryFailedPublishes": Call(Role.OPERATOR, "mutation { retryFailedPublishes { dataId } }", {}),
    "setAutoPublish": Call(
        Role.OPERATOR,
        'mutation { setAutoPublish(dataId: "to-finalize", enabled: false) { autoPublish } }',
        {},
    ),
    "registerDataProduct": Call(
        Role.OPERATOR,
        'mutation { registerDataProduct(dataId: "new-catalog", type: CATALOG, stagePath: "catalogs/new.csv")'
        " { stagePath } }",
        {},
    ),
    "linkDataProducts": Call(
        Role.OPERATOR,
        'mutation { linkDataProducts(parentId: "to-finalize", childId: "to-publish") { relationship } }',
        {},
    ),
    # The dead-letter queue (the seeded failed jobs; DLQ_VERBS) and the circuit breakers.
    "failDeadLetter": Call(
        Role.OPERATOR, f'mutation {{ failDeadLetter(itemId: "job-{FAILED_JOB}") {{ status }} }}', {}
    ),
    "retryDeadLetter": Call(
        Role.OPERATOR, f'mutation {{ retryDeadLetter(itemId: "job-{FAILED_JOB}") {{ status }} }}', {}
    ),
    "resolveDeadLetter": Call(
        Role.OPERATOR,
        f'mutation {{ resolveDeadLetter(itemId: "job-{RESOLVED_JOB}", note: "ok") {{ status }} }}',
        {},
    ),
    "resetCircuitBreaker": Call(
        Role.OPERATOR, 'mutation { resetCircuitBreaker(name: "database") { state } }', {}
    ),
    "clearCaches": Call(Role.OPERATOR, 'mutation { clearCaches(names: ["plots"]) { name removed } }', {}),
}

# The role table of the REST layer: every route that is not a GET.
REST_WRITES: dict[tuple[str, str], Role] = {
    ("POST", "/mosaics/create"): Role.OPERATOR,
    ("POST", "/reprocess/{group_id}"): Role.OPERATOR,
    ("POST", "/regions"): Role.OPERATOR,
    ("PUT", "/regions/{region_id}"): Role.OPERATOR,
    ("DELETE", "/regions/{region_id}"): Role.OPERATOR,
    ("POST", "/data/{data_id:path}/finalize"): Role.OPERATOR,
    ("POST", "/data/{data_id:path}/publish"): Role.OPERATOR,
    ("POST", "/data/{data_id:path}/auto-publish/enable"): Role.OPERATOR,
    ("POST", "/data/{data_id:path}/auto-publish/disable"): Role.OPERATOR,
    ("POST", "/monitoring/publish/retry/{data_id:path}"): Role.OPERATOR,
    ("POST", "/monitoring/publish/retry-all"): Role.OPERATOR,
    ("POST", "/ms/discover"): Role.OPERATOR,
    ("POST", "/qa/notebook/generate"): Role.OPERATOR,
    **{("POST", f"/jobs/{kind}"): Role.OPERATOR for kind in STAGE_PATHS},
    ("POST", "/control/jobs/create"): Role.OPERATOR,
    ("POST", "/jobs/id/{job_id}/cancel"): Role.OPERATOR,
    ("POST", "/jobs/id/{job_id}/retry"): Role.OPERATOR,
    **{("POST", f"/batch/{form}"): Role.OPERATOR for form in BATCH_FORMS},
    ("POST", "/batch/{batch_id}/cancel"): Role.OPERATOR,
    ("POST", "/batch/{batch_id}/retry"): Role.OPERATOR,
    **{("POST", f"/streaming/{verb}"): Role.OPERATOR for verb in ("start", "stop", "restart", "config")},
    ("POST", "/qa/images/{image_ref:path}/validation-report/generate"): Role.OPERATOR,
    ("POST", "/visualization/notebook/generate"): Role.OPERATOR,
    ("POST", "/visualization/notebook/qa"): Role.OPERATOR,
    **{("POST", f"/operations/dlq/items/{{item_id}}/{verb}"): Role.OPERATOR for verb in DLQ_VERBS},
    ("POST", "/operations/circuit-breakers/{name}/reset"): Role.OPERATOR,
    ("DELETE", "/cache/clear"): Role.OPERATOR,
    ("DELETE", "/cache/keys/{key}"): Role.OPERATOR,  # answers 501 to an operator (UNSERVED_WRITES)
    # Reads that take a JSON body, hence POST: open to readers.
    ("POST", "/sources/search"): Role.VIEWER,
    ("POST", "/mosaics/query"): Role.VIEWER,
    ("POST", "/images/{image_id}/fit"): Role.VIEWER,
    ("POST", "/ms/{ms_path:path}/validate-caltable"): Role.VIEWER,
    ("POST", "/visualization/js9/analysis"): Role.VIEWER,
    ("POST", "/qa/images/{image_ref:path}/catalog-validation/run"): Role.VIEWER,
}

REST_CALLS: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("POST", "/mosaics/create"): (
        "/api/mosaics/create",
        {"start_time": "2025-10-24T15:00:00Z", "end_time": "2025-10-24T16:00:00Z", "name": "rest-mosaic"},
    ),
    ("POST", "/reprocess/{group_id}"): (f"/api/reprocess/{FAILED_GROUP}", None),
    ("POST", "/regions"): ("/api/regions", {"image_id": 1, "name": "rest region", **CIRCLE}),
    ("PUT", "/regions/{region_id}"): ("/api/regions/1", {"name": "renamed by rest"}),
    ("DELETE", "/regions/{region_id}"): ("/api/regions/2", None),
    ("POST", "/data/{data_id:path}/finalize"): ("/api/data/to-finalize/finalize", None),
    ("POST", "/data/{data_id:path}/publish"): ("/api/data/to-publish/publish", None),
    ("POST", "/data/{data_id:path}/auto-publish/enable"): ("/api/data/to-finalize/auto-publish/enable", None),
    ("POST", "/data/{data_id:path}/auto-publish/disable"): (
        "/api/data/to-finalize/auto-publish/disable",
        None,
    ),
    ("POST", "/monitoring/publish/retry/{data_id:path}"): ("/api/monitoring/publish/retry/to-retry", None),
    ("POST", "/monitoring/publish/retry-all"): ("/api/monitoring/publish/retry-all", None),
    ("POST", "/ms/discover"): ("/api/ms/discover", {}),
    ("POST", "/qa/notebook/generate"): ("/api/qa/notebook/generate", {"group_id": MS_GROUP}),
    # The stage kinds stand in as placeholders here (STAGE_STANDINS): this checks who may, not what.
    **{("POST", f"/jobs/{kind}"): (f"/api/jobs/{kind}", {"ms_path": "/ms/a.ms"}) for kind in STAGE_PATHS},
    ("POST", "/control/jobs/create"): ("/api/control/jobs/create", {"job_type": "noop"}),
    ("POST", "/jobs/id/{job_id}/cancel"): (f"/api/jobs/id/{SUBMITTED_JOB}/cancel", None),
    ("POST", "/jobs/id/{job_id}/retry"): (f"/api/jobs/id/{SUBMITTED_JOB}/retry", None),
    **{("POST", f"/batch/{form}"): (f"/api/batch/{form}", body) for form, body in BATCH_FORMS.items()},
    ("POST", "/batch/{batch_id}/cancel"): ("/api/batch/1/cancel", None),
    ("POST", "/batch/{batch_id}/retry"): ("/api/batch/1/retry", None),
    ("POST", "/streaming/start"): ("/api/streaming/start?wait=0", {"poll_interval": 1}),
    ("POST", "/streaming/config"): ("/api/streaming/config?wait=0", {"poll_interval": 2}),
    ("POST", "/streaming/restart"): ("/api/streaming/restart?wait=0", None),
    ("POST", "/streaming/stop"): ("/api/streaming/stop?wait=0", None),
    ("POST", "/qa/images/{image_ref:path}/validation-report/generate"): (
        "/api/qa/images/1/validation-report/generate",
        {"output_path": "access.html"},
    ),
    ("POST", "/visualization/notebook/generate"): (
        "/api/visualization/notebook/generate",
        {"group_id": MS_GROUP},
    ),
    ("POST", "/visualization/notebook/qa"): ("/api/visualization/notebook/qa", {"ms_path": MS_PATH}),
    **{
        ("POST", f"/operations/dlq/items/{{item_id}}/{verb}"): (
            f"/api/operations/dlq/items/job-{DLQ_ITEM[verb]}/{verb}",
            None,
        )
        for verb in DLQ_VERBS
    },
    ("POST", "/operations/circuit-breakers/{name}/reset"): (
        "/api/operations/circuit-breakers/database/reset",
        None,
    ),
    ("DELETE", "/cache/clear"): ("/api/cache/clear?cache=plots", None),
    ("DELETE", "/cache/keys/{key}"): ("/api/cache/keys/some-key", None),
}
UNSERVED_WRITES = {("DELETE", "/cache/keys/{key}")}
"""Writes with no counterpart (tests/compat/test_contract.py UNIMPLEMENTED): refused to readers,
and a coded 501 to the operator."""


def test_every_mutation_declares_the_role_in_the_table() -> None:
    roles = field_roles(build_schema(Settings()), "Mutation")
    assert None not in roles.values()
    assert roles == {name: call.role for name, call in MUTATIONS.items()}, (
        "a mutation was added or changed: declare its role with extensions=[requires(Role...)] "
        "and add it to MUTATIONS here and to the README's role table"
    )


def test_every_rest_route_but_get_declares_the_role_in_the_table() -> None:
    routes = declared_routes(Settings())
    assert undeclared_routes(routes) == []
    declared = {(r.method, r.path): r.role for r in routes if r.method not in SAFE_METHODS}
    assert declared == REST_WRITES
    assert {key for key, role in REST_WRITES.items() if role is not Role.VIEWER} == set(REST_CALLS)


async def _seeded(engine: AsyncEngine) -> dict[Role | None, dict[str, str]]:
    """The live tests' groups, source and candidate; an image with two regions; a key per role."""
    await seed(engine)
    async with engine.begin() as conn:
        image = (
            await conn.execute(
                insert(images)
                .values(path="/img/a.fits", type="5min", created_at=T0, mid_mjd=60972.6)
                .returning(images.c.id)
            )
        ).scalar_one()
        for _ in (FAILED_JOB, RESOLVED_JOB):
            await conn.execute(
                insert(jobs).values(
                    type="noop", state="failed", params={}, created_at=T0, error="exit status 1"
                )
            )
        for name in ("one", "two"):
            await conn.execute(
                insert(regions).values(name=name, type="circle", image_pk=image, shape=CIRCLE, created_at=T0)
            )
    await key_headers(engine, Role.VIEWER, "to-revoke")
    headers: dict[Role | None, dict[str, str]] = {None: {}}
    for role in Role:
        headers[role] = await key_headers(engine, role, f"{role}-key")
    return headers


async def _seed_files(engine: AsyncEngine, root: Path) -> None:
    """Real files for the file, QA and lifecycle writes: the completed group's MS (on record)
    with its bandpass table, and staged catalogs; ``to-retry`` has one failed publish."""
    ms = await asyncio.to_thread(write_ms, root / MS_PATH, MsSpec(start_mjd=60972.5, dec_deg=42.0))
    await asyncio.to_thread(write_caltable, root / "ms" / f"{MS_GROUP}_bpcal", ms, "B")
    async with engine.begin() as conn:
        group = (await conn.execute(select(groups.c.id).where(groups.c.group_id == MS_GROUP))).scalar_one()
        await conn.execute(
            insert(measurement_sets).values(
                path=str(ms), group_pk=group, status="discovered", stage="discovered", created_at=T0
            )
        )
    # The seeded image as a real FITS file (noise on a demo tile's WCS) for its validation report.
    tile = root / "images" / "a.fits"
    tile.parent.mkdir()
    header = tile_wcs(CIRCLE["ra_deg"], CIRCLE["dec_deg"]).to_header()
    header.update(BMAJ=0.01, BMIN=0.01, BPA=0.0, BUNIT="Jy/beam")
    noise = np.random.default_rng(1).normal(0.0, 1e-3, (64, 64)).astype(np.float32)
    await asyncio.to_thread(fits.writeto, tile, noise, header)
    async with engine.begin() as conn:
        await conn.execute(update(images).where(images.c.path == "/img/a.fits").values(path=str(tile)))
    (root / "catalogs").mkdir()
    for data_id in STAGED:
        staged = root / "catalogs" / f"{data_id}.csv"
        staged.write_text("source_id,ra_deg,dec_deg,flux_jy\n")
        await register_product(engine, data_id=data_id, data_type="catalog", stage_path=str(staged))
    async with engine.begin() as conn:
        await conn.execute(
            update(data_products)
            .where(data_products.c.data_id == "to-retry")
            .values(publish_attempts=1, publish_error="disk full", publish_failed_at=T0)
        )


@dataclass
class Seeded:
    http: httpx.AsyncClient
    engine: AsyncEngine
    headers: dict[Role | None, dict[str, str]]


@contextlib.asynccontextmanager
async def seeded_app(database_url: str, tmp_path: Path, files: bool = False) -> AsyncIterator[Seeded]:
    """The app with its lifespan, on a seeded database, and a key per role (None: anonymous);
    ``files``: with the MS, calibration table and staged products of ``_seed_files`` too."""
    # Webhooks off: the access tests' subscription points at a made-up host.
    settings = Settings(data_dir=tmp_path, database_url=database_url, metrics_interval_s=0, webhook_poll_s=0)
    # The pipeline stages' kinds stand in as placeholders (STAGE_STANDINS): this checks who may.
    with kinds.replaced(*STAGE_STANDINS):
        async with running(settings) as live:
            headers = await _seeded(live.engine)
            if files:
                await _seed_files(live.engine, tmp_path)
            yield Seeded(live.http, live.engine, headers)


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


async def test_each_mutation_as_each_caller(empty_db_url: str, tmp_path: Path) -> None:
    async with seeded_app(empty_db_url, tmp_path, files=True) as app:
        http, headers = app.http, app.headers
        for name, call in MUTATIONS.items():
            request = {"query": call.document, "variables": call.variables}
            anonymous = await http.post("/graphql", json=request)
            assert (anonymous.status_code, _code(anonymous.json())) == (401, "UNAUTHENTICATED"), name
            assert anonymous.json()["data"] is None
            if call.role is not Role.VIEWER:
                viewer = await http.post("/graphql", json=request, headers=headers[Role.VIEWER])
                assert (viewer.status_code, _code(viewer.json())) == (403, "FORBIDDEN"), name
            if call.role is Role.ADMIN:
                operator = await http.post("/graphql", json=request, headers=headers[Role.OPERATOR])
                assert (operator.status_code, _code(operator.json())) == (403, "FORBIDDEN"), name
            for i, role in enumerate(ROLES_FROM[call.role]):
                allowed = await http.post("/graphql", json=request, headers=headers[role])
                body = allowed.json()
                assert allowed.status_code == 200 and _code(body) not in ("UNAUTHENTICATED", "FORBIDDEN")
                if i == 0:  # the least role allowed: the call does what it says
                    assert "errors" not in body and body["data"][name] is not None, (name, body)


async def test_each_rest_write_as_each_caller(empty_db_url: str, tmp_path: Path) -> None:
    async with seeded_app(empty_db_url, tmp_path, files=True) as app:
        http, headers = app.http, app.headers
        for (method, template), (path, body) in REST_CALLS.items():
            role = REST_WRITES[(method, template)]
            kwargs: dict[str, Any] = {"json": body} if body is not None else {}
            refused = await http.request(method, path, **kwargs)
            assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHENTICATED", path
            assert refused.headers["www-authenticate"].startswith("Bearer")
            viewer = await http.request(method, path, headers=headers[Role.VIEWER], **kwargs)
            assert viewer.status_code == 403 and viewer.json()["code"] == "FORBIDDEN", path
            for i, allowed_role in enumerate(ROLES_FROM[role]):
                allowed = await http.request(method, path, headers=headers[allowed_role], **kwargs)
                assert allowed.status_code not in (401, 403), (path, allowed.text)
                if i == 0:
                    served = (method, template) not in UNSERVED_WRITES
                    assert allowed.status_code == (200 if served else 501), (path, allowed.text)


async def test_reads_sent_as_post_are_open_to_anonymous_readers(empty_db_url: str, tmp_path: Path) -> None:
    async with seeded_app(empty_db_url, tmp_path, files=True) as app:
        http = app.http
        assert (await http.post("/api/sources/search", json={"limit": 1})).status_code == 200
        assert (await http.post("/api/mosaics/query", json={})).status_code == 200
        check = await http.post(
            f"/api/ms/{MS_PATH}/validate-caltable", json={"caltable_path": f"ms/{MS_GROUP}_bpcal"}
        )
        assert check.status_code == 200 and isinstance(check.json()["compatible"], bool), check.text


async def test_a_refused_operation_changes_nothing(empty_db_url: str, tmp_path: Path) -> None:
    """An operator's mutation with one admin-only field is refused whole: the group stays failed."""
    async with seeded_app(empty_db_url, tmp_path) as app:
        http, headers = app.http, app.headers
        both = f"""mutation Both {{
          a: reprocessGroup(groupId: "{FAILED_GROUP}") {{ state }}
          ... on Mutation {{ b: createApiKey(name: "sneaky", role: ADMIN) {{ secret }} }}
        }}"""
        refused = await http.post("/graphql", json={"query": both}, headers=headers[Role.OPERATOR])
        body = refused.json()
        assert refused.status_code == 403 and body["data"] is None and _code(body) == "FORBIDDEN"
        assert "createApiKey" in body["errors"][0]["message"]
        group = await http.post(
            "/graphql", json={"query": f'{{ group(groupId: "{FAILED_GROUP}") {{ state }} }}'}
        )
        assert group.json()["data"]["group"]["state"] == "FAILED"


async def test_audit_fields_come_from_the_identity_never_the_request(
    empty_db_url: str, tmp_path: Path
) -> None:
    async with seeded_app(empty_db_url, tmp_path) as app:
        http, headers = app.http, app.headers
        operator = headers[Role.OPERATOR]
        spoofed = 'mutation { setEseCandidateStatus(candidateId: 1, status: DISMISSED, changedBy: "evil") { status } }'
        refused = await http.post("/graphql", json={"query": spoofed}, headers=operator)
        assert _code(refused.json()) == "GRAPHQL_VALIDATION_FAILED"  # no such argument any more
        review = "mutation { setEseCandidateStatus(candidateId: 1, status: DISMISSED) { changedBy } }"
        done = (await http.post("/graphql", json={"query": review}, headers=operator)).json()
        assert done["data"]["setEseCandidateStatus"]["changedBy"] == "key:operator-key"
        created = await http.post(
            "/api/regions",
            json={"image_id": 1, "name": "mine", "created_by": "someone else", **CIRCLE},
            headers=operator,
        )
        assert created.json()["region"]["created_by"] == "key:operator-key"
        async with app.engine.connect() as conn:
            authors = (await conn.execute(select(ese_status_changes.c.changed_by))).scalars().all()
        assert authors == ["key:operator-key"]


async def test_who_finalized_and_published_a_product_is_the_caller(empty_db_url: str, tmp_path: Path) -> None:
    async with seeded_app(empty_db_url, tmp_path, files=True) as app:
        http, headers = app.http, app.headers
        spoofed = {"finalized_by": "evil", "published_by": "evil", "validation_status_body": "validated"}
        finalized = await http.post(
            "/api/data/to-finalize/finalize", json=spoofed, headers=headers[Role.OPERATOR]
        )
        body = finalized.json()
        assert body["auto_published"], body  # a validated catalog needs no QA: published at once
        assert body["finalized_by"] == body["published_by"] == "key:operator-key"
        publish = 'mutation { publishDataProduct(dataId: "to-publish", publishedBy: "evil") { publishedBy } }'
        refused = await http.post("/graphql", json={"query": publish}, headers=headers[Role.ADMIN])
        assert _code(refused.json()) == "GRAPHQL_VALIDATION_FAILED"  # no such argument
        done = await http.post(
            "/graphql",
            json={"query": publish.replace(', publishedBy: "evil"', "")},
            headers=headers[Role.ADMIN],
        )
        assert done.json()["data"]["publishDataProduct"]["publishedBy"] == "key:admin-key"
        async with app.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        data_products.c.data_id, data_products.c.finalized_by, data_products.c.published_by
                    )
                    .where(data_products.c.data_id.in_(STAGED))
                    .order_by(data_products.c.data_id)
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("to-finalize", "key:operator-key", "key:operator-key"),
            ("to-publish", None, "key:admin-key"),
            ("to-retry", None, None),
        ]


async def test_the_audit_log_is_for_admins_and_records_every_attempt(
    empty_db_url: str, tmp_path: Path
) -> None:
    async with seeded_app(empty_db_url, tmp_path) as app:
        http, headers = app.http, app.headers
        reprocess = {"query": MUTATIONS["reprocessGroup"].document, "variables": {"g": FAILED_GROUP}}
        await http.post("/graphql", json=reprocess)  # anonymous: refused
        await http.post("/graphql", json=reprocess, headers=headers[Role.VIEWER])  # refused
        await http.post("/graphql", json=reprocess, headers=headers[Role.OPERATOR])  # done
        await http.post("/graphql", json=reprocess, headers=headers[Role.OPERATOR])  # conflict
        big = [{"sourceId": "NVSS J123456.7+420312", "peakFluxJy": 0.01, "peakFluxErrJy": 0.001}] * 50
        await http.post(
            "/graphql",
            json={"query": MUTATIONS["ingestMeasurements"].document, "variables": {"i": 1, "m": big}},
            headers=headers[Role.ADMIN],
        )
        log = """query($f: AuditFilter) { auditLog(first: 10, filter: $f, direction: ASC) { totalCount nodes {
                   actor actorKind role operation arguments address outcome at } } }"""
        only = {"f": {"operations": ["reprocessGroup"]}}
        entries = (
            await http.post("/graphql", json={"query": log, "variables": only}, headers=headers[Role.ADMIN])
        ).json()["data"]["auditLog"]
        assert [(e["actor"], e["outcome"]) for e in entries["nodes"]] == [
            ("anonymous", "UNAUTHENTICATED"),
            ("key:viewer-key", "FORBIDDEN"),
            ("key:operator-key", "OK"),
            ("key:operator-key", "CONFLICT"),
        ]
        assert all(e["arguments"] == {"groupId": FAILED_GROUP} for e in entries["nodes"][2:])
        assert entries["nodes"][2]["address"] == "127.0.0.1" and entries["nodes"][2]["at"].endswith("Z")
        ingest = (
            await http.post(
                "/graphql",
                json={
                    "query": log,
                    "variables": {"f": {"operations": ["ingestMeasurements"], "actors": ["key:admin-key"]}},
                },
                headers=headers[Role.ADMIN],
            )
        ).json()["data"]["auditLog"]["nodes"]
        assert len(ingest) == 1 and ingest[0]["arguments"]["imageId"] == 1
        assert ingest[0]["arguments"]["measurements"] == "[50 items]"  # a summary, not the rows
        for role, code in (
            (None, "UNAUTHENTICATED"),
            (Role.VIEWER, "FORBIDDEN"),
            (Role.OPERATOR, "FORBIDDEN"),
        ):
            denied = (await http.post("/graphql", json={"query": log}, headers=headers[role])).json()
            assert denied["data"] is None and _code(denied) == code


async def test_hostile_names_are_refused_before_anything_is_written(
    empty_db_url: str, tmp_path: Path
) -> None:
    async with seeded_app(empty_db_url, tmp_path) as app:
        http, headers = app.http, app.headers
        operator = headers[Role.OPERATOR]
        window = {"start_time": "2025-10-24T15:00:00Z", "end_time": "2025-10-24T16:00:00Z"}
        for name in ("../../../../etc/cron.d/x", "/etc/passwd", "a;rm -rf", ".hidden"):
            rest = await http.post("/api/mosaics/create", json={**window, "name": name}, headers=operator)
            assert rest.status_code == 400 and rest.json()["code"] == "BAD_NAME", rest.text
            graph = await http.post(
                "/graphql",
                json={
                    "query": 'mutation($n: String!) { createMosaicJob(startTime: "2025-10-24T15:00:00Z", '
                    'endTime: "2025-10-24T16:00:00Z", name: $n) { jobId } }',
                    "variables": {"n": name},
                },
                headers=operator,
            )
            assert _code(graph.json()) == "BAD_NAME"
            region = await http.post(
                "/api/regions", json={"image_id": 1, "name": name, **CIRCLE}, headers=operator
            )
            assert region.status_code == 400 and region.json()["code"] == "BAD_NAME"
        jobs = (await http.post("/graphql", json={"query": "{ jobs { totalCount } }"})).json()
        assert jobs["data"]["jobs"]["totalCount"] == 2  # the seeded failed jobs only
