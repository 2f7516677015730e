"""REST fidelity sweep: documented field types and formats against the demo's real data.

What a field-by-field pass over the contract (``dashboard_backend_api.md``) and the legacy
dashboard's calls (legacy-pipeline-facts §6) pinned down: the queue counts of ``/api/status``
are groups (one legacy ``ingest_queue`` row each), product times are ISO 8601 UTC strings,
directory-listing sizes are integer bytes, and the Control page's job forms are accepted.
The frontend's other writes and filtered GETs (``frontend/src/api/queries.ts`` and the
components that post by themselves, dsa110-contimg at 03eaf4a8) are sent here in their exact
shapes: the region editor's partial update, the fitting tool's default whole-image fit, the
notebook generator's menu, the stage-metrics filter and the MS list's calibrator quality.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select

from compat_rest import table_order
from dsa110.auth.identity import Role
from dsa110.db import tables as t
from dsa110.settings import Settings
from tests.compat.conftest import Demo, assert_envelope
from tests.credentials import key_headers
from tests.graph.conftest import Graph

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
QUEUE_STATES = ("collecting", "pending", "in_progress", "completed", "failed")


async def test_status_queue_counts_groups_like_the_legacy_ingest_queue(
    api: httpx.AsyncClient, graph: Graph
) -> None:
    """`queue` is the legacy `fetch_queue_stats`: `COUNT(*)` and per-state sums over
    `ingest_queue`, whose rows are observation groups (not subband files, not jobs). `total`
    counts every group, `collecting` ones included."""
    async with graph.engine.connect() as conn:
        by_state: dict[str, int] = dict(
            (await conn.execute(select(t.groups.c.state, func.count()).group_by(t.groups.c.state))).all()
        )
        n_files = (await conn.execute(select(func.count()).select_from(t.subband_files))).scalar_one()
    queue = (await api.get("/api/status")).json()["queue"]
    assert set(queue) == {"total", *QUEUE_STATES}
    assert all(type(queue[k]) is int for k in queue)
    assert queue["total"] == sum(by_state.values()) == sum(queue[s] for s in QUEUE_STATES)
    assert {s: queue[s] for s in QUEUE_STATES} == {s: by_state.get(s, 0) for s in QUEUE_STATES}
    assert n_files > queue["total"] > 0  # 16 subbands a group: files would be ~16x the groups
    # The streaming service's `queue_stats` is the same queue, under the document's names too.
    stats = (await api.get("/api/streaming/status")).json()["queue_stats"]
    assert stats["total"] == queue["total"] and stats["processing"] == queue["in_progress"]


async def test_calibration_sets_name_the_calibrator_group_they_were_solved_on(api: httpx.AsyncClient) -> None:
    """`calibration_sets[].cal_group_id` is a group id (`2025-10-13T13:28:03`), as documented:
    the pipeline names a set `cal_<group_id>` after the calibrator group it solved."""
    sets = (await api.get("/api/status")).json()["calibration_sets"]
    assert sets
    for one in sets:
        assert one["set_name"] == f"cal_{one['cal_group_id']}", one
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", one["cal_group_id"])
        assert one["created_at"] is None or ISO_UTC.match(one["created_at"])
        group = await api.get(f"/api/groups/{one['cal_group_id']}")
        assert group.status_code == 200 and group.json()["has_calibrator"] is True, group.text


async def test_products_are_images_newest_first_with_iso_utc_times(
    api: httpx.AsyncClient, graph: Graph
) -> None:
    """`GET /products`: `{items: [{type, path, created_at}]}` with `created_at` an ISO 8601 UTC
    string as the document shows (`2025-10-24T14:00:00Z`; the legacy server sent naive local
    time, a defect), plus the legacy `ProductEntry` fields."""
    nodes = (
        await graph.data(
            "{ images(first: 5, orderBy: CREATED_AT, direction: DESC) { nodes { imageId createdAt } } }"
        )
    )["images"]["nodes"]
    items = (await api.get("/api/products", params={"limit": 5})).json()["items"]
    assert [i["id"] for i in items] == [n["imageId"] for n in nodes]
    for item, node in zip(items, nodes, strict=True):
        assert isinstance(item["created_at"], str) and ISO_UTC.match(item["created_at"]), item["created_at"]
        assert datetime.fromisoformat(item["created_at"]) == datetime.fromisoformat(node["createdAt"])
        assert isinstance(item["type"], str) and item["type"]
        assert isinstance(item["path"], str) and item["path"].startswith("/")
        assert isinstance(item["pbcor"], bool) and type(item["id"]) is int
        assert item["noise_jy"] is None or isinstance(item["noise_jy"], float)
    stamps = [datetime.fromisoformat(i["created_at"]) for i in items]
    assert stamps == sorted(stamps, reverse=True)


def _size(path: str) -> int:
    return Path(path).stat().st_size


def _is_file(path: str) -> bool:
    return Path(path).is_file()


async def test_directory_listing_sizes_are_integer_bytes(api: httpx.AsyncClient, demo: Demo) -> None:
    """`GET /qa/directories` files: `size` in bytes as an integer (`123456`), not a float."""
    images = demo.root / "images"
    listing = (await api.get("/api/qa/directories", params={"path": str(images), "limit": 5})).json()
    assert listing["files"]
    for entry in listing["files"]:
        assert type(entry["size"]) is int, entry
        assert entry["size"] == _size(entry["path"])
        assert ISO_UTC.match(entry["modified"]), entry["modified"]
    assert all(e["size"] is None or type(e["size"]) is int for e in listing["entries"])
    first = listing["files"][0]["path"]
    assert type((await api.get(f"/api/qa/fits{first}")).json()["size_bytes"]) is int


async def _ms_with_file(graph: Graph) -> str:
    found = await graph.data("{ measurementSets(first: 50) { nodes { path file { nRows } } } }")
    return str(next(n["path"] for n in found["measurementSets"]["nodes"] if n["file"] is not None))


def _submitted(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_the_control_pages_job_forms_are_accepted(api: httpx.AsyncClient, graph: Graph) -> None:
    """The legacy Control page posts `{ms_path, params: CalibrateJobParams | JobParams}` and
    `{params: ConversionJobParams | WorkflowParams}` (its form state at 04470031). Names ours
    call otherwise are renamed; knobs of the legacy solver and imager with no counterpart are
    set aside and listed in `ignored_params`; any other unknown name is still refused."""
    ms = await _ms_with_file(graph)
    before = (await api.get("/api/jobs")).json()["total"]
    calibrate = _submitted(
        await api.post(
            "/api/jobs/calibrate",
            json={
                "ms_path": ms,
                "params": {
                    "field": "",
                    "refant": "103",
                    "solve_delay": True,
                    "solve_bandpass": True,
                    "solve_gains": True,
                    "gain_solint": "inf",
                    "gain_calmode": "ap",
                    "auto_fields": True,
                    "min_pb": 0.5,
                    "do_flagging": False,
                    "use_existing_tables": "auto",
                },
            },
        )
    )
    assert calibrate["type"] == "calibrate" and calibrate["ms_path"] == ms
    assert calibrate["params"]["solint"] == "inf" and calibrate["params"]["refant"] == "103"
    assert "gain_solint" not in calibrate["params"] and "field" not in calibrate["ignored_params"]
    assert set(calibrate["ignored_params"]) == {
        "solve_delay",
        "solve_bandpass",
        "solve_gains",
        "gain_calmode",
        "auto_fields",
        "min_pb",
        "do_flagging",
        "use_existing_tables",
    }
    apply = _submitted(await api.post("/api/jobs/apply", json={"ms_path": ms, "params": {"gaintables": []}}))
    assert apply["type"] == "apply" and apply["ignored_params"] == []
    image_params = {"gridder": "wproject", "wprojplanes": -1, "datacolumn": "corrected", "quick": False}
    image = _submitted(
        await api.post("/api/jobs/image", json={"ms_path": ms, "params": {**image_params, "skip_fits": True}})
    )
    assert image["params"]["datacolumn"] == "corrected"
    assert set(image["ignored_params"]) == {"gridder", "wprojplanes", "quick", "skip_fits"}
    # The API document's example names: `cellsize` (arcsec) is our `cell_arcsec`.
    documented = _submitted(
        await api.post(
            "/api/jobs/image",
            json={"ms_paths": [ms], "parameters": {"imsize": 64, "cellsize": 30.0, "niter": 10}},
        )
    )
    assert documented["params"]["cell_arcsec"] == 30.0 and documented["ignored_params"] == []
    created = _submitted(
        await api.post(
            "/api/control/jobs/create", json={"job_type": "image", "ms_path": ms, "params": image_params}
        )
    )
    assert set(created["ignored_params"]) == {"gridder", "wprojplanes", "quick"}
    # Refused, nothing queued: an unknown name, and one parameter given under both names.
    assert_envelope(
        await api.post("/api/jobs/image", json={"ms_path": ms, "params": {"gridderr": 1}}),
        400,
        "BAD_JOB_PARAMS",
    )
    both = {"ms_path": ms, "params": {"gain_solint": "inf", "solint": "60s"}}
    assert_envelope(await api.post("/api/jobs/calibrate", json=both), 400, "BAD_JOB_PARAMS")
    assert (await api.get("/api/jobs")).json()["total"] == before + 5


async def test_the_control_pages_convert_form_reads_the_legacy_incoming_directory(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """The convert form's default `input_dir` is the legacy `/data/incoming`: this deployment's
    incoming directory, as for `GET /uvh5`; `writer`, `stage_to_tmpfs`, `max_workers` set aside."""
    files = (await api.get("/api/uvh5", params={"limit": 1})).json()["files"]
    assert files, "the demo has incoming subband files"
    stamp = files[0]["timestamp"]
    start = datetime.fromisoformat(stamp)
    params = {
        "input_dir": "/data/incoming",
        "output_dir": str(Path(files[0]["path"]).parent.parent / "ms"),
        "start_time": start.isoformat(),
        "end_time": start.replace(second=59).isoformat(),
        "writer": "auto",
        "stage_to_tmpfs": True,
        "max_workers": 4,
    }
    convert = _submitted(await api.post("/api/jobs/convert", json={"params": params}))
    assert convert["params"]["group_id"] == stamp
    assert all(p.startswith(str(Path(files[0]["path"]).parent)) for p in convert["params"]["uvh5_paths"])
    assert set(convert["ignored_params"]) == {"writer", "stage_to_tmpfs", "max_workers"}
    # The real server's batch form: the items and the shared ConversionJobParams inside `params`.
    shared = {k: v for k, v in params.items() if k not in ("start_time", "end_time")}
    windows = [{"start_time": params["start_time"], "end_time": params["end_time"]}]
    batch = _submitted(
        await api.post(
            "/api/batch/convert",
            json={"job_type": "convert", "params": {"time_windows": windows, "params": shared}},
        )
    )
    assert batch["total_items"] == 1 and batch["jobs"][0]["params"]["group_id"] == stamp
    assert set(batch["ignored_params"]) == {"writer", "stage_to_tmpfs", "max_workers"}
    # The workflow form sends only the window: the legacy default input directory applies.
    window = {"start_time": params["start_time"], "end_time": params["end_time"]}
    workflow = _submitted(await api.post("/api/jobs/workflow", json={"params": window}))
    assert workflow["params"]["convert"]["group_id"] == stamp
    # Its legacy default output directory (WorkflowParams.output_dir) is this deployment's
    # Measurement Set directory, not a path the job would be refused to write to.
    legacy_out = {**window, "output_dir": "/stage/dsa110-contimg/ms/"}
    workflow = _submitted(await api.post("/api/jobs/workflow", json={"params": legacy_out}))
    assert workflow["params"]["convert"]["output_dir"] == str(settings.ms_dir)


async def test_the_region_editor_updates_with_a_partial_region(
    api: httpx.AsyncClient, graph: Graph, settings: Settings
) -> None:
    """queries.ts useUpdateRegion (`PUT /regions/{id}` with `Partial<Region>`): a name alone,
    or new coordinates without the `type` (the legacy server never changed a region's type)
    keep the region's type; the region object as listed, sent back whole, is accepted too."""
    image = (await graph.data("{ images(first: 1) { nodes { imageId path centerRaDeg centerDecDeg } } }"))[
        "images"
    ]["nodes"][0]
    centre = {"ra_deg": image["centerRaDeg"], "dec_deg": image["centerDecDeg"]}
    made = await api.post(
        "/api/regions",
        json={
            "name": "ref",
            "type": "circle",
            "coordinates": {**centre, "radius_deg": 0.05},
            "image_path": image["path"],
        },
    )
    assert made.status_code == 200, made.text
    rid = made.json()["id"]
    renamed = await api.put(f"/api/regions/{rid}", json={"name": "ref 2"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["updated"] is True and renamed.json()["region"]["name"] == "ref 2"
    moved = await api.put(
        f"/api/regions/{rid}", json={"name": "ref 3", "coordinates": {**centre, "radius_deg": 0.1}}
    )
    assert moved.status_code == 200, moved.text
    region = moved.json()["region"]
    assert region["type"] == "circle" and region["name"] == "ref 3"
    assert region["coordinates"]["radius_arcsec"] == 360.0
    listed = (await api.get("/api/regions", params={"image_path": image["path"]})).json()["regions"]
    whole = next(r for r in listed if r["id"] == rid)
    again = await api.put(f"/api/regions/{rid}", json={**whole, "name": "ref 4"})
    assert again.status_code == 200 and again.json()["region"]["coordinates"] == region["coordinates"], (
        again.text
    )
    # Refused as before: a shape unlike its type, an unknown region, a viewer's write.
    bad = await api.put(f"/api/regions/{rid}", json={"coordinates": {"type": "hexagon"}})
    assert 400 <= bad.status_code < 500 and bad.json()["code"], bad.text
    assert_envelope(await api.put("/api/regions/999999", json={"coordinates": centre}), 404, "NOT_FOUND")
    viewer = await key_headers(settings.resolved_database_url, Role.VIEWER)
    assert_envelope(await api.put(f"/api/regions/{rid}", json={"name": "x"}, headers=viewer), 403)
    assert (await api.delete(f"/api/regions/{rid}")).status_code == 200


async def test_the_fitting_tools_default_fits_the_most_significant_source(
    api: httpx.AsyncClient, graph: Graph
) -> None:
    """ImageFittingTool.tsx defaults to "None (Fit entire image)": queries.ts useImageFitting
    posts `{model, fit_background}` with no region. The legacy server fitted the whole image
    seeded at its peak pixel; here the fit is the most significant detection's."""
    found = await graph.data(
        "{ images(first: 20) { nodes { imageId measurements(first: 500) { nodes { raDeg decDeg snr } } } } }"
    )
    image = next(n for n in found["images"]["nodes"] if len(n["measurements"]["nodes"]) >= 2)
    best = max(image["measurements"]["nodes"], key=lambda m: m["snr"] or 0.0)
    url = f"/api/images/{image['imageId']}/fit"
    default = await api.post(url, json={"model": "gaussian", "fit_background": True})
    assert default.status_code == 200, default.text
    body = default.json()
    at = await api.post(
        url,
        json={
            "model": "gaussian",
            "fit_background": True,
            "ra_deg": best["raDeg"],
            "dec_deg": best["decDeg"],
        },
    )
    assert at.status_code == 200, at.text
    assert body["center_wcs"] == at.json()["center_wcs"] and body["parameters"] == at.json()["parameters"]
    assert abs(body["center_wcs"]["dec"] - best["decDeg"]) < 0.05 and body["ignored_params"] == []
    # The hook's `initial_guess` is a JSON string; it is set aside, and said so.
    guessed = await api.post(
        url,
        json={"model": "moffat", "fit_background": False, "initial_guess": json.dumps({"amplitude": 1.0})},
    )
    assert guessed.status_code == 200 and guessed.json()["ignored_params"] == ["initial_guess"], guessed.text
    assert_envelope(await api.post("/api/images/999999/fit", json={"model": "gaussian"}), 404, "NOT_FOUND")


async def test_the_notebook_generators_menu_types_are_accepted(
    api: httpx.AsyncClient, graph: Graph, demo: Demo
) -> None:
    """QANotebookGenerator.tsx posts `{ms_path?, qa_root, output_path, title?, notebook_type:
    "qa" | "fits" | "ms"}` (queries.ts useGenerateNotebook); the legacy server ignored the type
    and wrote its one QA notebook: here each is the full notebook of the MS's group."""
    ms = await _ms_with_file(graph)
    for kind in ("qa", "fits", "ms"):
        out = demo.root / "qa" / f"menu_{kind}.ipynb"
        made = await api.post(
            "/api/visualization/notebook/generate",
            json={
                "ms_path": ms,
                "qa_root": "/data/dsa110-contimg/state/qa",
                "output_path": str(out),
                "title": "QA",
                "notebook_type": kind,
            },
        )
        assert made.status_code == 200, made.text
        assert made.json()["success"] is True and _is_file(made.json()["notebook_path"])
    bogus = {"ms_path": ms, "output_path": str(demo.root / "qa" / "x.ipynb"), "notebook_type": "pdf"}
    assert_envelope(
        await api.post("/api/visualization/notebook/generate", json=bogus), 422, "VALIDATION_ERROR"
    )
    # Without an MS (the generator at 03eaf4a8 drops it) there is no group to write for.
    no_ms = {"qa_root": "/data/dsa110-contimg/state/qa", "output_path": str(demo.root / "qa" / "y.ipynb")}
    assert_envelope(await api.post("/api/visualization/notebook/generate", json=no_ms), 422)


async def test_the_stage_metrics_panel_filters_by_stage_name(api: httpx.AsyncClient) -> None:
    """queries.ts useStageMetrics: `GET /pipeline/stages/metrics?stage_name=<name>&limit=100`."""
    every = (await api.get("/api/pipeline/stages/metrics", params={"limit": 100})).json()
    assert len(every) >= 2
    name = every[0]["stage_name"]
    one = await api.get("/api/pipeline/stages/metrics", params={"stage_name": name, "limit": 100})
    assert one.status_code == 200 and [s["stage_name"] for s in one.json()] == [name], one.text
    assert one.json()[0] == every[0]
    assert (await api.get("/api/pipeline/stages/metrics", params={"stage_name": "nope"})).json() == []
    assert len((await api.get("/api/pipeline/stages/metrics", params={"limit": 1})).json()) == 1
    assert_envelope(await api.get("/api/pipeline/stages/metrics", params={"limit": 0}), 422)


async def test_the_ms_list_filters_by_calibrator_quality(api: httpx.AsyncClient) -> None:
    """queries.ts useMSList sends `calibrator_quality=excellent|good|marginal|poor` (MSListFilters):
    the MSs whose best calibrator match has that primary-beam quality band, paged after it."""
    with_cal = (await api.get("/api/ms", params={"has_calibrator": "true", "limit": 1000})).json()["items"]
    bands = {
        b: [m["path"] for m in with_cal if m["calibrator_quality"] == b]
        for b in ("excellent", "good", "marginal", "poor")
    }
    assert any(bands.values()), with_cal
    for band, paths in bands.items():
        got = (await api.get("/api/ms", params={"calibrator_quality": band, "limit": 1000})).json()
        assert sorted(m["path"] for m in got["items"]) == sorted(paths), band
        assert got["total"] == got["filtered"] == len(paths)
        assert all(m["calibrator_quality"] == band for m in got["items"])
    band, paths = max(bands.items(), key=lambda kv: len(kv[1]))
    page = (
        await api.get("/api/ms", params={"calibrator_quality": band, "limit": 1, "offset": len(paths) - 1})
    ).json()
    assert len(page["items"]) == 1 and page["total"] == len(paths)
    none = await api.get("/api/ms", params={"calibrator_quality": band, "has_calibrator": "false"})
    assert none.status_code == 200 and none.json()["items"] == []
    assert_envelope(
        await api.get("/api/ms", params={"calibrator_quality": "superb"}), 422, "VALIDATION_ERROR"
    )


async def test_the_detail_pages_tables_sort_and_search(api: httpx.AsyncClient, graph: Graph) -> None:
    """The Image and Source detail pages' GenericTable sends `page`, `page_size`, the search box
    as `search` and a column header's sort as `ordering=field` / `ordering=-field` (the row's
    own keys) to `/api/images/{id}/measurements` and `/api/sources/{id}/detections` (through
    a doubled `/api`). Each page is cut from the whole list in that order; no order or search:
    the graph's page as before."""
    images = await graph.data(
        "{ images(first: 500, orderBy: CREATED_AT, direction: DESC) { nodes { imageId nMeasurements } } }"
    )
    image_id = max(images["images"]["nodes"], key=lambda n: n["nMeasurements"])["imageId"]
    base = f"/api/api/images/{image_id}/measurements"
    every = (await api.get(base, params={"page": 1, "page_size": 100})).json()
    assert every["total"] == len(every["items"]) >= 4
    by_flux = sorted(every["items"], key=lambda m: m["flux_peak"], reverse=True)
    for page in (1, 2):
        got = await api.get(base, params={"page": page, "page_size": 2, "ordering": "-flux_peak"})
        assert got.status_code == 200 and "x-ignored-parameters" not in got.headers, got.headers
        body = got.json()
        assert body["total"] == every["total"] and body["page"] == page
        assert [m["flux_peak"] for m in body["items"]] == [
            m["flux_peak"] for m in by_flux[(page - 1) * 2 : page * 2]
        ]
    names = sorted(m["name"] for m in every["items"])
    ascending = (await api.get(base, params={"page_size": 100, "ordering": "name"})).json()
    assert [m["name"] for m in ascending["items"]] == names
    needle = names[-1][-7:].lower()  # part of one catalog name, in another case
    found = (await api.get(base, params={"page_size": 100, "search": needle})).json()

    def matches(row: dict[str, Any]) -> bool:  # the search reads every text field of a row
        return any(isinstance(v, str) and needle in v.lower() for v in row.values())

    assert found["items"] and all(matches(m) for m in found["items"])
    assert found["total"] == sum(matches(m) for m in every["items"])
    # The image table's search is the graph's for ASCII text (a source-name filter), the
    # rows those the whole list searched here gives, with an order or without; LIKE's
    # wildcards are text; "ß" folds to "ss" (NVSS) either way; "é" is arranged here.
    for params in (
        {"search": needle.upper()},
        {"search": needle, "ordering": "-snr"},
        {"search": "%"},
        {"search": "_"},
        {"search": "ß"},
        {"search": "ß", "ordering": "flux_int"},
        {"search": "é"},
    ):
        got = (await api.get(base, params={"page_size": 100, **params})).json()
        assert got["items"] == table_order.arrange(every["items"], params), params
        assert got["total"] == len(got["items"])
    assert (await api.get(base, params={"search": "ß"})).json()["total"] == every["total"]
    # A column the graph orders by is sorted there (one page read); the rows are those the
    # whole list arranged here would give, ties and missing values included.
    for key in table_order.orders_for(*every["items"][0]):
        for ordering in (key, f"-{key}"):
            arranged = table_order.arrange(every["items"], {"ordering": ordering})
            by_graph = (await api.get(base, params={"page_size": 100, "ordering": ordering})).json()
            assert by_graph["items"] == arranged and by_graph["total"] == every["total"], ordering
    unknown = (await api.get(base, params={"page_size": 100, "ordering": "-no_such_column"})).json()
    assert [m["name"] for m in unknown["items"]] == [m["name"] for m in every["items"]]
    assert_envelope(await api.get(base, params={"ordering": "flux; drop"}), 422, "VALIDATION_ERROR")
    assert_envelope(await api.get("/api/images/99999999/measurements", params={"ordering": "snr"}), 404)

    source_id = every["items"][0]["source_id"]
    detections = f"/api/api/sources/{quote(source_id)}/detections"
    all_epochs = (await api.get(detections, params={"page_size": 100})).json()
    assert all_epochs["total"] >= 2
    by_snr = sorted(all_epochs["items"], key=lambda d: d["snr"])
    got = (await api.get(detections, params={"page": 1, "page_size": 2, "ordering": "snr"})).json()
    assert [d["snr"] for d in got["items"]] == [d["snr"] for d in by_snr[:2]]
    assert got["total"] == all_epochs["total"]
    for key in table_order.orders_for(*all_epochs["items"][0]):
        for ordering in (key, f"-{key}"):
            arranged = table_order.arrange(all_epochs["items"], {"ordering": ordering})
            by_graph = (await api.get(detections, params={"page_size": 100, "ordering": ordering})).json()
            assert by_graph["items"] == arranged, ordering


async def test_a_table_too_long_to_sort_whole_is_refused_not_sorted_in_part(
    api: httpx.AsyncClient, graph: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Search, and a sort on a field the graph does not order by, read the whole list (at
    most ``SCAN_ROWS``): a longer table would be sorted from its first rows only and counted
    short, so it is refused with a code. A sort the graph gives reads one page: served."""
    images = await graph.data("{ images(first: 50) { nodes { imageId nMeasurements } } }")
    image = max(images["images"]["nodes"], key=lambda n: n["nMeasurements"])
    monkeypatch.setattr(table_order, "SCAN_ROWS", image["nMeasurements"] - 1)
    base = f"/api/images/{image['imageId']}/measurements"
    for params in ({"ordering": "-compactness"}, {"search": "é"}, {"search": "nvss", "ordering": "name"}):
        refused = assert_envelope(await api.get(base, params=params), 422, "TABLE_TOO_LONG_TO_ARRANGE")
        assert refused["details"]["rows"] == image["nMeasurements"]
    assert (await api.get(base, params={"page_size": 2})).status_code == 200  # paging as before
    searched = await api.get(base, params={"page_size": 2, "search": "NVSS", "ordering": "-snr"})
    assert searched.status_code == 200 and searched.json()["total"] == image["nMeasurements"]
    brightest = await api.get(base, params={"page_size": 3, "ordering": "-snr"})
    assert brightest.status_code == 200 and brightest.json()["total"] == image["nMeasurements"]
    snrs = [m["snr"] for m in brightest.json()["items"]]
    assert snrs == sorted(snrs, reverse=True) and len(snrs) == 3
