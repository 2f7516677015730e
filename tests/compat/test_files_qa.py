"""MS, calibration tables, UVH5 and QA over HTTP, on the demo's real files: the documented
fields, agreement with the files themselves, PNGs of the expected size, a notebook that runs."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import quote

import httpx
import nbformat
import numpy as np
import pytest
from astropy.io import fits
from casacore import tables as ct
from nbclient import NotebookClient
from PIL import Image

from tests.compat.conftest import Demo, assert_envelope
from tests.graph.conftest import Graph


def url_path(path: Path) -> str:
    return quote(str(path).lstrip("/"))


def cal_ms(demo: Demo) -> Path:
    """The demo's calibrator MS: the one with calibration tables beside it."""
    return next(p for p in sorted((demo.root / "ms").glob("*.ms")) if list(p.parent.glob(p.stem + "_bpcal")))


def png_size(content: bytes) -> tuple[int, int]:
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(content)) as picture:
        picture.verify()
        return picture.size


async def test_ms_listing_and_index(api: httpx.AsyncClient, graph: Graph, demo: Demo) -> None:
    listing = (await api.get("/api/ms", params={"limit": 5})).json()
    count = await graph.data("{ measurementSets(first: 0) { totalCount } }")
    assert listing["total"] == count["measurementSets"]["totalCount"] and len(listing["ms_list"]) == 5
    first = listing["ms_list"][0]
    assert {"path", "stage", "status", "mid_mjd", "field_name", "has_calibrator", "size_gb"} <= set(first)
    mids = [m["mid_mjd"] for m in listing["ms_list"]]
    assert mids == sorted(mids, reverse=True)
    page2 = (await api.get("/api/ms", params={"limit": 5, "offset": 5})).json()
    assert not {m["path"] for m in page2["ms_list"]} & {m["path"] for m in listing["ms_list"]}
    searched = (await api.get("/api/ms", params={"search": cal_ms(demo).name})).json()
    assert [m["path"] for m in searched["ms_list"]] == [str(cal_ms(demo))]
    index = (await api.get("/api/ms_index", params={"stage": "imaged", "limit": 3})).json()
    assert all(i["stage"] == "imaged" and i["imagename"] for i in index["items"])
    control = (await api.get("/api/control/ms/list", params={"status": "done", "limit": 2})).json()
    assert control["limit"] == 2 and all(m["status"] == "done" for m in control["ms_list"])


async def test_discovery_registers_what_is_on_disk(api: httpx.AsyncClient, demo: Demo) -> None:
    found = await api.post("/api/ms/discover", json={"recursive": True})
    body = found.json()
    assert found.status_code == 200 and body["discovered"] == len(list((demo.root / "ms").glob("*.ms")))
    assert body["registered"] + body["updated"] == body["discovered"] and body["skipped"] == 0
    assert_envelope(await api.post("/api/ms/discover", json={"scan_dir": "/etc"}), 404)
    assert_envelope(await api.post("/api/ms/discover", json={"search_paths": "ms"}), 422)


async def test_ms_metadata_agrees_with_casacore(api: httpx.AsyncClient, demo: Demo) -> None:
    ms = cal_ms(demo)
    response = await api.get(f"/api/ms/{url_path(ms)}/metadata")
    assert response.status_code == 200, response.text
    meta = response.json()
    with ct.table(str(ms), ack=False) as main:
        time, interval = main.getcol("TIME"), main.getcol("INTERVAL")
        flags = main.getcol("FLAG")
    with ct.table(str(ms / "ANTENNA"), ack=False) as ant:
        names = list(ant.getcol("NAME"))
    with ct.table(str(ms / "SPECTRAL_WINDOW"), ack=False) as spw:
        n_chan = int(spw.getcol("NUM_CHAN").sum())
    with ct.table(str(ms / "FIELD"), ack=False) as field:
        phase = field.getcol("PHASE_DIR")
    assert meta["path"] == str(ms) and meta["n_antennas"] == len(names) == meta["num_antennas"]
    assert [a["name"] for a in meta["antennas"]] == names
    assert meta["n_channels"] == n_chan and meta["n_baselines"] == len(names) * (len(names) - 1) // 2
    assert meta["duration_seconds"] == pytest.approx(
        (time + interval / 2).max() - (time - interval / 2).min()
    )
    assert meta["field_ra_deg"] == pytest.approx(np.degrees(phase[0, 0, 0]) % 360)
    assert meta["field_dec_deg"] == pytest.approx(np.degrees(phase[0, 0, 1]))
    assert meta["num_fields"] == phase.shape[0] == 24
    assert meta["flagging_stats"]["total_fraction"] == pytest.approx(flags.mean())
    assert meta["data_columns"] == ["DATA", "CORRECTED_DATA", "MODEL_DATA"]


async def test_calibrators_tables_and_validation(api: httpx.AsyncClient, demo: Demo) -> None:
    ms = cal_ms(demo)
    matches = (await api.get(f"/api/ms/{url_path(ms)}/calibrator-matches")).json()
    assert matches["has_calibrator"] and matches["pointing_dec"] == pytest.approx(42.0)
    best = matches["matches"][0]
    assert best["weighted_flux"] == pytest.approx(best["pb_response"] * best["flux_jy"])
    existing = (await api.get(f"/api/ms/{url_path(ms)}/existing-caltables")).json()
    assert existing["has_k"] and existing["has_bp"] and existing["has_g"]
    assert all(t["compatible"] for t in existing["caltables"]) and len(existing["caltables"]) == 3
    bp = existing["bp_tables"][0]["path"]
    valid = await api.post(f"/api/ms/{url_path(ms)}/validate-caltable", json={"caltable_path": bp})
    assert valid.status_code == 200 and valid.json()["compatible"] and valid.json()["issues"] == []
    # A table of another day's calibrator applied to this MS: outside its validity window.
    other = next(p for p in (demo.root / "ms").glob("*.ms") if p != ms)
    late = (await api.post(f"/api/ms/{url_path(other)}/validate-caltable", json={"caltable_path": bp})).json()
    assert late["ms_antennas"] == late["caltable_antennas"]
    assert_envelope(await api.post(f"/api/ms/{url_path(ms)}/validate-caltable", json={}), 422)
    not_a_table = await api.post(
        f"/api/ms/{url_path(ms)}/validate-caltable", json={"caltable_path": str(ms / "ANTENNA")}
    )
    assert not_a_table.status_code in (200, 422)
    tables = (await api.get("/api/caltables")).json()
    assert {t["type"] for t in tables["caltables"]} == {"K", "BP", "GP"}
    assert all(t["ms_path"] == str(ms) for t in tables["caltables"])


async def test_uvh5_listing_reads_headers_and_pages(api: httpx.AsyncClient, demo: Demo) -> None:
    files = sorted((demo.root / "incoming").glob("*.hdf5"), reverse=True)
    listing = (await api.get("/api/uvh5", params={"limit": 10})).json()
    assert listing["total"] == len(files) and [f["path"] for f in listing["files"]] == [
        str(p) for p in files[:10]
    ]
    entry = listing["items"][0]
    assert entry["size"] == files[0].stat().st_size and entry["timestamp"] == files[0].name[:19]
    assert entry["phase_center_dec_deg"] == pytest.approx(42.0)
    second = (await api.get("/api/uvh5", params={"limit": 10, "offset": 10})).json()
    assert [f["path"] for f in second["files"]] == [str(p) for p in files[10:20]]
    sb = (await api.get("/api/uvh5", params={"subband": "sb03"})).json()
    assert sb["total"] == len([f for f in files if "_sb03" in f.name]) and all(
        i["subband"] == "sb03" for i in sb["items"]
    )
    assert_envelope(await api.get("/api/uvh5", params={"subband": "x9"}), 422)
    assert_envelope(await api.get("/api/uvh5", params={"input_dir": "/etc"}), 404)


async def test_calibration_qa_plots_and_completeness(api: httpx.AsyncClient, demo: Demo) -> None:
    ms = url_path(cal_ms(demo))
    qa = (await api.get(f"/api/qa/calibration/{ms}")).json()
    assert qa["overall_quality"] == "good" and qa["calibration_quality"]["success_rate"] == 1.0
    assert qa["bp_metrics"]["amp_mean"] == pytest.approx(1.0, abs=0.1) and len(qa["per_spw_stats"]) == 2
    plots = (await api.get(f"/api/qa/calibration/{ms}/bandpass-plots")).json()
    assert plots["count"] == 6 and plots["plots"][0]["filename"] == "bandpass_antenna_0.png"
    picture = await api.get(plots["plots"][0]["url"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert png_size(picture.content) == (900, 600)
    spw = await api.get(f"/api/qa/calibration/{ms}/spw-plot")
    assert png_size(spw.content) == (900, 500)
    assert_envelope(await api.get(f"/api/qa/calibration/{ms}/bandpass-plots/bandpass_antenna_99.png"), 404)
    assert_envelope(await api.get(f"/api/qa/calibration/{ms}/bandpass-plots/passwd"), 404)
    complete = (await api.get(f"/api/qa/calibration/{ms}/caltable-completeness")).json()
    assert complete == {
        **complete,
        "completeness": 1.0,
        "missing_antennas": [],
        "missing_times": [],
        "has_issues": False,
    }
    whole = (await api.get(f"/api/qa/{ms}")).json()
    assert whole["calibration_qa"]["overall_quality"] == "good" and "flagging_stats" in whole
    other = next(p for p in (demo.root / "ms").glob("*.ms") if p != cal_ms(demo))
    bare = (await api.get(f"/api/qa/calibration/{url_path(other)}/caltable-completeness")).json()
    assert bare["missing_tables"] == ["K", "BP", "G"] and bare["completeness"] == 0.0
    assert_envelope(await api.get(f"/api/qa/calibration/{url_path(other)}/spw-plot"), 404)


async def test_browsing_fits_casa_and_thumbnails(api: httpx.AsyncClient, demo: Demo) -> None:
    root = (await api.get("/api/qa/directories", params={"path": str(demo.root)})).json()
    names = {d["name"] for d in root["directories"]}
    assert {"ms", "images", "incoming"} <= names
    ms_dir = (await api.get("/api/qa/directories", params={"path": str(demo.root / "ms"), "limit": 2})).json()
    assert ms_dir["total"] == len(list((demo.root / "ms").iterdir())) and len(ms_dir["entries"]) == 2
    assert ms_dir["casatable_count"] == ms_dir["total"]
    image = sorted((demo.root / "images").glob("*.fits"))[0]
    info = (await api.get(f"/api/qa/fits/{url_path(image)}")).json()
    header = fits.getheader(image)
    assert info["header"]["NAXIS1"] == header["NAXIS1"] and info["data_shape"] == list(
        fits.getdata(image).shape
    )
    assert info["statistics"]["max"] == pytest.approx(float(np.nanmax(fits.getdata(image))))
    table = (await api.get(f"/api/qa/casa/{url_path(cal_ms(demo))}", params={"rows": 2})).json()
    assert table["table_type"] == "MS" and len(table["rows"]) == 2
    assert {c["name"] for c in table["columns"]} >= {"TIME", "DATA", "FLAG", "ANTENNA1"}
    thumb = await api.get("/api/qa/thumbnail", params={"path": str(image), "size": 256})
    assert thumb.status_code == 200 and max(png_size(thumb.content)) == 256
    again = await api.get("/api/qa/thumbnail", params={"path": str(image), "size": 256})
    assert again.content == thumb.content  # cached


async def test_artifacts_files_and_notebook(api: httpx.AsyncClient, graph: Graph, demo: Demo) -> None:
    ms = cal_ms(demo)
    made = await graph.data(
        "mutation($p: String!) { generateCalibrationPlots(msPath: $p) { kind name path group { groupId } } }",
        p=str(ms),
    )
    plots = made["generateCalibrationPlots"]
    assert len(plots) == 7 and all(p["kind"] == "plot" for p in plots)
    listed = (await api.get("/api/qa", params={"limit": 50})).json()
    assert {p["path"] for p in plots} <= {i["path"] for i in listed["items"]}
    thumbs = (await api.get("/api/qa/thumbs")).json()
    assert len({t["group_id"] for t in thumbs["items"]}) == len(thumbs["items"])
    group = ms.name[:-3]
    picture = Path(plots[0]["path"])
    qa_group = demo.root / "qa" / group
    qa_group.mkdir(parents=True, exist_ok=True)
    content = picture.read_bytes()  # noqa: ASYNC240
    (qa_group / "quicklook.png").write_bytes(content)
    served = await api.get(f"/api/qa/file/{group}/quicklook.png")
    assert served.status_code == 200 and served.content == content
    assert_envelope(await api.get(f"/api/qa/file/{group}/%2e%2e"), 422)
    written = await api.post("/api/qa/notebook/generate", json={"group_id": group, "notebook_type": "full"})
    assert written.status_code == 200, written.text
    path = Path(written.json()["notebook_path"])
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=180, kernel_name="python3").execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum(1 for o in outputs if "image/png" in o.get("data", {})) >= 2  # tables and image plotted
    by_ms = await api.post(
        "/api/qa/notebook/generate", json={"ms_path": str(ms), "notebook_type": "calibration"}
    )
    assert by_ms.status_code == 200 and by_ms.json()["notebook_path"].endswith("_calibration.ipynb")
    assert_envelope(
        await api.post("/api/qa/notebook/generate", json={"group_id": "1999-01-01T00:00:00"}), 404
    )
    assert_envelope(
        await api.post("/api/qa/notebook/generate", json={"group_id": group, "output_path": "/etc/x.ipynb"}),
        404,
    )
    assert_envelope(await api.post("/api/qa/notebook/generate", json={}), 422)


async def test_simultaneous_notebooks_to_one_path_leave_one_whole_file(
    api: httpx.AsyncClient, demo: Demo
) -> None:
    """Operators asking for the same group's notebook at once: every request answers, the file
    is one whole notebook (no writer renamed another's half-written file), one artefact row."""
    import asyncio

    group = cal_ms(demo).name[:-3]
    body = {"group_id": group, "notebook_type": "image"}
    answers = await asyncio.gather(*(api.post("/api/qa/notebook/generate", json=body) for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    paths = {a.json()["notebook_path"] for a in answers}
    assert len(paths) == 1
    path = Path(paths.pop())
    nbformat.validate(nbformat.read(path, as_version=4))
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}")] == []
    listed = (await api.get("/api/qa", params={"limit": 500})).json()["items"]
    assert sum(1 for item in listed if item["path"] == str(path)) == 1


async def test_a_thumbnail_url_handed_out_is_served(api: httpx.AsyncClient, graph: Graph) -> None:
    """``thumbnailUrl`` gives the REST route's URL; a size that route refuses is refused
    where the URL is asked for (it handed out URLs for 2**31 - 1 pixels, answered 422)."""
    query = "query($s: Int!) { images(first: 1) { nodes { thumbnailUrl(size: $s) } } }"
    url = (await graph.data(query, s=64))["images"]["nodes"][0]["thumbnailUrl"]
    served = await api.get(url)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    for size in (2**31 - 1, 15, 0, -5):
        refused = await graph.run(query, s=size)
        assert refused.errors and refused.errors[0].extensions["code"] == "BAD_USER_INPUT", size
