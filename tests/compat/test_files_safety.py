"""Every route taking a path refuses what lies outside the data roots, each in the envelope:
``..`` segments and NUL -> 422, absolute paths elsewhere and symlinks leading out -> 404."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.compat.conftest import Demo, assert_envelope

DOTDOT = "%2e%2e"

# (method, URL template with {p} = a path without its leading "/", JSON body or None)
PATH_ROUTES = [
    ("GET", "/api/ms/{p}/metadata", None),
    ("GET", "/api/ms/{p}/calibrator-matches", None),
    ("GET", "/api/ms/{p}/existing-caltables", None),
    ("POST", "/api/ms/{p}/validate-caltable", {"caltable_path": "/tmp/x_bpcal"}),
    ("GET", "/api/qa/fits/{p}", None),
    ("GET", "/api/qa/casa/{p}", None),
    ("GET", "/api/qa/calibration/{p}", None),
    ("GET", "/api/qa/calibration/{p}/bandpass-plots", None),
    ("GET", "/api/qa/calibration/{p}/bandpass-plots/bandpass_antenna_0.png", None),
    ("GET", "/api/qa/calibration/{p}/spw-plot", None),
    ("GET", "/api/qa/calibration/{p}/caltable-completeness", None),
    ("GET", "/api/qa/{p}", None),
    ("GET", "/api/qa/directories?path=/{p}", None),
    ("GET", "/api/qa/thumbnail?path=/{p}", None),
    ("GET", "/api/qa/download?path=/{p}", None),
    ("GET", "/api/caltables?cal_dir=/{p}", None),
    ("GET", "/api/uvh5?input_dir=/{p}", None),
    ("POST", "/api/ms/discover", {"scan_dir": "/{p}"}),
    ("POST", "/api/qa/notebook/generate", {"ms_path": "/{p}"}),
]
IDS = [f"{m} {u.replace('{p}', '*')}" for m, u, _ in PATH_ROUTES]


@pytest.fixture
def escape(demo: Demo) -> Path:
    """A symlink inside the data root that leads to /etc."""
    link = demo.root / "qa" / "escape"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        os.symlink("/etc", link)
    return link


def cases(demo: Demo, escape: Path) -> list[tuple[str, int]]:
    root = quote(str(demo.root).lstrip("/"))
    return [
        (f"{root}/ms/{DOTDOT}/{DOTDOT}/etc", 422),  # parent segments
        (f"{root}/ms/a%00b", 422),  # NUL
        ("etc", 404),  # an absolute path outside the roots (/etc)
        (quote(str(escape / "passwd").lstrip("/")), 404),  # a symlink leaving the roots
    ]


async def _send(
    api: httpx.AsyncClient, method: str, template: str, body: dict | None, p: str
) -> httpx.Response:
    url = template.replace("{p}", p)
    if body is None:
        return await api.request(method, url)
    raw = {k: v.replace("{p}", p).replace("%00", "\x00").replace(DOTDOT, "..") for k, v in body.items()}
    return await api.request(method, url, json=raw)


@pytest.mark.parametrize(("method", "template", "body"), PATH_ROUTES, ids=IDS)
async def test_paths_outside_the_roots_are_refused(
    api: httpx.AsyncClient, demo: Demo, escape: Path, method: str, template: str, body: dict | None
) -> None:
    for p, status in cases(demo, escape):
        response = await _send(api, method, template, body, p)
        assert_envelope(response, status)


async def test_caltable_path_in_a_body_is_checked_too(
    api: httpx.AsyncClient, demo: Demo, escape: Path
) -> None:
    ms = next((demo.root / "ms").glob("*.ms"))
    url = f"/api/ms/{quote(str(ms).lstrip('/'))}/validate-caltable"
    for table, status in (("/etc/passwd", 404), (str(escape / "passwd"), 404), (f"{demo.root}/../x", 422)):
        assert_envelope(await api.post(url, json={"caltable_path": table}), status)
    assert_envelope(await api.post(url, json={"caltable_path": "a\x00b"}), 422)


async def test_an_ms_route_on_a_file_that_is_no_ms(api: httpx.AsyncClient, demo: Demo) -> None:
    uvh5 = next((demo.root / "incoming").glob("*.hdf5"))
    assert_envelope(await api.get(f"/api/ms/{quote(str(uvh5).lstrip('/'))}/metadata"), 404)
    catalog = next((demo.root / "catalogs").glob("*.csv"))
    assert_envelope(await api.get(f"/api/qa/fits/{quote(str(catalog).lstrip('/'))}"), 422)
    assert_envelope(await api.get(f"/api/qa/casa/{quote(str(demo.root / 'ms').lstrip('/'))}"), 404)
    assert_envelope(await api.get("/api/qa/thumbnail", params={"path": str(catalog)}), 422)


async def test_the_servers_own_files_under_the_root_are_not_served(
    api: httpx.AsyncClient, demo: Demo
) -> None:
    """The data directory is a root, and holds the database (key hashes, webhook secrets, the
    audit log) and hidden entries: `/api/qa/download` used to hand anyone the whole database."""
    (demo.root / "state.sqlite3").write_bytes(b"SQLite format 3\x00")
    (demo.root / "state.sqlite3-wal").write_bytes(b"wal")
    (demo.root / ".private").mkdir(exist_ok=True)
    (demo.root / ".private" / "note.txt").write_text("mine")
    link = demo.root / "qa" / "state-link.bin"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        os.symlink(demo.root / "state.sqlite3", link)
    private = [
        demo.root / "state.sqlite3",
        demo.root / "state.sqlite3-wal",
        demo.root / ".private" / "note.txt",
        link,  # a visible name leading to a private file
        *demo.root.glob("*.sqlite3"),  # the demo's own database, on SQLite
    ]
    for path in private:
        for url in ("/api/qa/download", "/api/visualization/fits/info", "/api/qa/thumbnail"):
            assert_envelope(await api.get(url, params={"path": str(path)}), 404, "NOT_FOUND")
    assert_envelope(await api.get("/api/qa/directories", params={"path": str(demo.root / ".private")}), 404)
    notebook = {"group_id": "x", "output_path": str(demo.root / ".private" / "n.ipynb")}
    assert (await api.post("/api/qa/notebook/generate", json=notebook)).status_code == 404
    listed = (await api.get("/api/qa/directories", params={"path": str(demo.root)})).json()
    names = {entry["name"] for entry in listed["directories"] + listed["files"]}
    assert "ms" in names and not {"state.sqlite3", "state.sqlite3-wal", ".private"} & names
    assert not any(name.endswith(".sqlite3") for name in names)
    # What is the clients' is served as before.
    served = await api.get(
        "/api/qa/download", params={"path": str(next((demo.root / "catalogs").glob("*.csv")))}
    )
    assert served.status_code == 200 and served.content
