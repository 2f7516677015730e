"""The QA validation report of an image: ``/api/qa/images/{id}/validation-report.html`` (the page,
optionally saved) and ``POST .../validation-report/generate`` (written to the reports directory)."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from dsa110.auth.identity import Role
from dsa110.ops.files.reports import (
    METRICS,
    OutputPathOutsideReports,
    default_name,
    figure,
    report_target,
    validation_report_html,
    write_report,
)
from dsa110.settings import Settings
from server.app import create_app
from tests.compat.conftest import Graph, assert_envelope
from tests.credentials import key_headers

CHECKS = ("astrometry", "flux_scale", "source_counts")


async def _image(graph: Graph) -> dict[str, Any]:
    """The demo image with the most measurements (every check has figures on it)."""
    images = (await graph.data("{ images(first: 20) { nodes { imageId path nMeasurements } } }"))["images"][
        "nodes"
    ]
    return max(images, key=lambda i: i["nMeasurements"])  # type: ignore[no-any-return]


def _reports(settings: Settings) -> Path:
    return settings.data_dir / "qa" / "reports"


def _listing(root: Path) -> dict[str, float]:
    return {str(p): p.lstat().st_mtime for p in root.rglob("*")} if root.exists() else {}


@pytest.fixture
async def as_role(settings: Settings) -> AsyncIterator[dict[Role | None, httpx.AsyncClient]]:
    """Clients as anonymous (None) and as a viewer, to see writes refused."""
    app = create_app(settings, migrate=False)
    transport = httpx.ASGITransport(app=app)
    clients: dict[Role | None, httpx.AsyncClient] = {}
    for role in (None, Role.VIEWER):
        headers = await key_headers(settings.resolved_database_url, role) if role is not None else {}
        clients[role] = httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()
        await app.state.engine.dispose()


def _whole_page(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>\n<html") and text.endswith("</body></html>\n")
    assert text.count("<html") == 1 and text.count("</html>") == 1


async def test_the_page_shows_the_figures_of_the_checks(
    api: httpx.AsyncClient, graph: Graph, settings: Settings
) -> None:
    image = await _image(graph)
    before = _listing(_reports(settings))
    checks = (
        await api.get(f"/api/qa/images/{image['imageId']}/catalog-validation", params={"catalog": "nvss"})
    ).json()
    page = await api.get(f"/api/qa/images/{image['imageId']}/validation-report.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
    text = page.text
    _whole_page(text)
    assert image["path"] in text and ">nvss<" in text
    for kind in CHECKS:
        section = re.search(f'<section id="{kind}">(.*?)</section>', text, re.S)
        assert section is not None, kind
        found = checks[kind]
        shown = 0
        for key, label in METRICS:
            if key in found:
                assert f'<th>{label}</th><td class="n">{figure(found[key])}</td>' in section.group(1), key
                shown += 1
        assert shown >= 4  # the counts and at least one measured figure
        for message in found["issues"] + found["warnings"]:
            assert html.escape(message) in section.group(1)
        verdict = "FAIL" if found["issues"] else "WARN" if found["warnings"] else "PASS"
        assert f"{verdict}</span></h2>" in section.group(1)
    flux = checks["flux_scale"]
    for measured, catalog, ratio in flux["matched_fluxes"][:5]:
        assert f'<td class="n">{figure(measured)}</td><td class="n">{figure(catalog)}</td>' in text
        assert f'<td class="n">{figure(ratio)}</td>' in text
    # Self-contained: no script and nothing fetched from anywhere (offline observatory networks).
    assert not re.search(r"<script|<link|<img|src=|href=|https?://|@import|url\(", text, re.I)
    # Reading the page writes nothing.
    assert _listing(_reports(settings)) == before

    one = await api.get(
        f"/api/qa/images/{image['imageId']}/validation-report.html", params={"validation_type": "flux_scale"}
    )
    assert one.status_code == 200
    assert '<section id="flux_scale">' in one.text and '<section id="astrometry">' not in one.text
    by_path = await api.get(f"/api/qa/images/{quote(image['path'], safe='')}/validation-report.html")
    assert by_path.status_code == 200 and '<section id="astrometry">' in by_path.text, by_path.text


async def test_saving_and_generating_write_the_report(
    api: httpx.AsyncClient, graph: Graph, settings: Settings
) -> None:
    image = await _image(graph)
    reports = _reports(settings).resolve()
    saved = await api.get(
        f"/api/qa/images/{image['imageId']}/validation-report.html", params={"save_to_file": "true"}
    )
    assert saved.status_code == 200, saved.text
    target = reports / default_name(image["path"])
    assert target.name == f"{Path(image['path']).stem}_validation_report.html"
    assert target.read_text() == saved.text

    made = await api.post(
        f"/api/qa/images/{image['imageId']}/validation-report/generate",
        json={
            "catalog": "nvss",
            "validation_types": ["source_counts", "astrometry"],
            "output_path": "a/b.html",
        },
    )
    assert made.status_code == 200, made.text
    body = made.json()
    assert body == {
        "status": "success",
        "report_path": str(reports / "a" / "b.html"),
        "image_path": image["path"],
        "catalog": "nvss",
        "validation_types": ["astrometry", "source_counts"],
    }
    written = (reports / "a" / "b.html").read_text()
    _whole_page(written)
    assert '<section id="astrometry">' in written and '<section id="flux_scale">' not in written
    # An absolute path inside the reports directory is accepted as well.
    inside = await api.post(
        f"/api/qa/images/{image['imageId']}/validation-report/generate",
        json={"output_path": str(reports / "absolute.html")},
    )
    assert inside.status_code == 200 and inside.json()["report_path"] == str(reports / "absolute.html")
    # The report is on record as a QA artefact of the image.
    found = await graph.data(
        '{ qaArtifacts(first: 50, filter: {kinds: ["report"]}) { nodes { path mediaType image { imageId } } } }'
    )
    recorded = {n["path"]: n for n in found["qaArtifacts"]["nodes"]}
    assert recorded[str(reports / "a" / "b.html")]["image"] == {"imageId": image["imageId"]}
    assert recorded[str(target)]["mediaType"] == "text/html"


async def test_writes_need_an_operator_and_refused_ones_write_nothing(
    as_role: dict[Role | None, httpx.AsyncClient], graph: Graph, settings: Settings
) -> None:
    image = await _image(graph)
    page = f"/api/qa/images/{image['imageId']}/validation-report.html"
    generate = f"/api/qa/images/{image['imageId']}/validation-report/generate"
    before = _listing(_reports(settings))
    for role, status, code in ((None, 401, "UNAUTHENTICATED"), (Role.VIEWER, 403, "FORBIDDEN")):
        client = as_role[role]
        # The same answers as every other REST write.
        assert_envelope(await client.post("/api/regions", json={"name": "x"}), status, code)
        assert_envelope(await client.post(generate, json={"output_path": f"by-{role}.html"}), status, code)
        refused = await client.get(page, params={"save_to_file": "true"})
        assert_envelope(refused, status, code)
        if status == 401:
            assert refused.headers["www-authenticate"].startswith("Bearer")
        # Reading the page is open to them.
        assert (await client.get(page)).status_code == 200
    assert _listing(_reports(settings)) == before


@pytest.mark.parametrize(
    ("output_path", "code"),
    [
        ("../escaped.html", "OUTPUT_PATH_OUTSIDE_REPORTS"),
        ("a/../../escaped.html", "OUTPUT_PATH_OUTSIDE_REPORTS"),
        ("../../../../../../etc/cron.d/x.html", "OUTPUT_PATH_OUTSIDE_REPORTS"),
        ("/etc/escaped.html", "OUTPUT_PATH_OUTSIDE_REPORTS"),
        ("/tmp/escaped.html", "OUTPUT_PATH_OUTSIDE_REPORTS"),
        ("{root}/qa/escaped.html", "OUTPUT_PATH_OUTSIDE_REPORTS"),
        ("{root}/qa/reports", "BAD_OUTPUT_PATH"),  # the directory itself
        ("{root}/qa/reports/../escaped.html", "OUTPUT_PATH_OUTSIDE_REPORTS"),
        ("escape/x.html", "OUTPUT_PATH_OUTSIDE_REPORTS"),  # a symlink to a directory elsewhere
        ("dangling/x.html", "OUTPUT_PATH_OUTSIDE_REPORTS"),  # a symlink to nowhere
        ("linked.html", "OUTPUT_PATH_OUTSIDE_REPORTS"),  # a symlink to a file elsewhere
        ("report.txt", "BAD_OUTPUT_PATH"),
        (".hidden.html", "BAD_OUTPUT_PATH"),
        ("a/.git/x.html", "BAD_OUTPUT_PATH"),
        ("dsa110.sqlite3", "BAD_OUTPUT_PATH"),
        ("a/" * 50 + "deep.html", "BAD_OUTPUT_PATH"),
        ("x" * 300 + ".html", "BAD_OUTPUT_PATH"),
        ("x" * 245 + ".html", "BAD_OUTPUT_PATH"),  # fits 255 bytes, its temporary name does not
        ("afile.html/x.html", "BAD_OUTPUT_PATH"),  # a directory named like a report (here a file)
        ("adir/x.html/y.html", "BAD_OUTPUT_PATH"),
        ("adir.html", "BAD_OUTPUT_PATH"),  # a directory stands there
        ("afile/x.html", "BAD_OUTPUT_PATH"),  # a file on the way
        ("a\\..\\..\\x.html", "BAD_OUTPUT_PATH"),
        ("\u202elmth.html", "BAD_OUTPUT_PATH"),  # an invisible right-to-left override
    ],
)
async def test_output_path_stays_in_the_reports_directory(
    api: httpx.AsyncClient, graph: Graph, settings: Settings, tmp_path: Path, output_path: str, code: str
) -> None:
    image = await _image(graph)
    reports = _reports(settings)
    reports.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.html"
    victim.write_text("untouched")
    for name, to in (("escape", outside), ("dangling", tmp_path / "nowhere"), ("linked.html", victim)):
        (reports / name).unlink(missing_ok=True)
        (reports / name).symlink_to(to)
    for name in ("afile.html", "afile"):
        (reports / name).write_text("a file")
    (reports / "adir.html").mkdir(exist_ok=True)
    try:
        before = _listing(reports)
        wanted = output_path.replace("{root}", str(settings.data_dir))
        refused = await api.post(
            f"/api/qa/images/{image['imageId']}/validation-report/generate", json={"output_path": wanted}
        )
        assert_envelope(refused, 400, code)
        assert _listing(reports) == before
        assert sorted(p.name for p in outside.iterdir()) == ["victim.html"]
        assert victim.read_text() == "untouched"
        assert not (reports.parent / "escaped.html").exists() and not (tmp_path / "nowhere").exists()
    finally:
        for name in ("escape", "dangling", "linked.html", "afile.html", "afile"):
            (reports / name).unlink(missing_ok=True)
        (reports / "adir.html").rmdir()


async def test_concurrent_writers_leave_one_whole_file(
    api: httpx.AsyncClient, graph: Graph, settings: Settings
) -> None:
    image = await _image(graph)
    reports = _reports(settings).resolve()
    generate = f"/api/qa/images/{image['imageId']}/validation-report/generate"
    answers = await asyncio.gather(
        *(
            api.post(generate, json={"output_path": "race.html", "validation_types": [kind]})
            for kind in (*CHECKS, "flux_scale")
        )
    )
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    text = (reports / "race.html").read_text()
    _whole_page(text)
    # One writer's page, whole: exactly one check's section.
    assert sum(f'<section id="{kind}">' in text for kind in CHECKS) == 1
    assert [p.name for p in reports.iterdir() if "race.html" in p.name] == ["race.html"]  # no partials left


async def test_unknown_images_and_bad_parameters(
    api: httpx.AsyncClient, graph: Graph, settings: Settings
) -> None:
    image = await _image(graph)
    before = _listing(_reports(settings))
    for ref in ("999999", "no-such-image", "..%2F..%2Fetc%2Fpasswd"):
        assert_envelope(await api.get(f"/api/qa/images/{ref}/validation-report.html"), 404, "NOT_FOUND")
        saved = await api.get(f"/api/qa/images/{ref}/validation-report.html", params={"save_to_file": "1"})
        assert_envelope(saved, 404, "NOT_FOUND")
        assert_envelope(await api.post(f"/api/qa/images/{ref}/validation-report/generate"), 404, "NOT_FOUND")
    page = f"/api/qa/images/{image['imageId']}/validation-report.html"
    generate = f"/api/qa/images/{image['imageId']}/validation-report/generate"
    for params in (
        {"validation_type": "colour"},
        {"catalog": "sdss"},
        {"min_snr": "-1"},
        {"search_radius_arcsec": "nan"},
        {"save_to_file": "maybe"},
    ):
        assert_envelope(await api.get(page, params=params), 422, "VALIDATION_ERROR")
    for body in (
        {"validation_types": "astrometry"},
        {"validation_types": []},
        {"validation_types": ["colour"]},
        {"catalog": "sdss"},
        {"output_path": 7},
        {"output_path": "x" * 5000},
        {"output_path": "bell\x07.html"},
        {"min_snr": 0},
    ):
        assert_envelope(await api.post(generate, json=body), 422, "VALIDATION_ERROR")
    for raw in (b"[1,", b"\xff\xfe", b"[" * 100):
        malformed = await api.post(generate, content=raw, headers={"content-type": "application/json"})
        assert malformed.status_code == 400 and malformed.json()["code"], malformed.text
    assert_envelope(await api.put(generate, json={}), 405, "METHOD_NOT_ALLOWED")
    assert _listing(_reports(settings)) == before


def test_every_value_on_the_page_is_escaped() -> None:
    hostile = "<script>alert('x')</script>&\"<img src=x onerror=alert(1)>"
    results = [
        {
            "validation_type": "astrometry",
            "n_matched": 1,
            "n_catalog": 2,
            "n_detected": 1,
            "mean_offset_arcsec": float("nan"),
            "issues": [hostile],
            "warnings": [f"warn {hostile}"],
            "matched_pairs": [((1.0, 2.0), (1.0, 2.0), 0.5)],
            "matched_fluxes": [],
        },
        {"validation_type": hostile, "n_matched": 0, "issues": [], "warnings": []},
    ]
    page = validation_report_html(
        f"/data/images/{hostile}.fits",
        hostile,
        results,
        search_radius_arcsec=10.0,
        min_snr=5.0,
        generated_at=datetime(2025, 10, 24, tzinfo=UTC),
    )
    _whole_page(page)
    assert "<script" not in page and "<img" not in page and "onerror=alert(1)>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;&quot;&lt;img" in page
    assert page.count("&lt;script&gt;") >= 5  # title, heading, image, catalog, messages, section
    assert '<td class="n">nan</td>' in page
    name = default_name(f"/data/images/{hostile}.fits")
    assert name.endswith("_validation_report.html") and "/" not in name and "<" not in name
    assert default_name("/data/.hidden.fits") == "hidden_validation_report.html"


def test_a_directory_swapped_for_a_symlink_after_the_check_is_not_followed(tmp_path: Path) -> None:
    # The path is checked before the catalog checks run and written seconds later: a
    # directory replaced by a symlink in between must be refused, nothing written through it.
    reports, outside = tmp_path / "reports", tmp_path / "outside"
    (reports / "sub").mkdir(parents=True)
    outside.mkdir()
    target = report_target(reports, "/data/img.fits", "sub/r.html")
    (reports / "sub").rmdir()
    (reports / "sub").symlink_to(outside)
    with pytest.raises(OutputPathOutsideReports):
        write_report(target, reports, "<p>page</p>")
    assert list(outside.iterdir()) == []
    # Unswapped, the page is written whole and nothing else is left beside it.
    (reports / "sub").unlink()
    written = write_report(report_target(reports, "/data/img.fits", "sub/r.html"), reports, "<p>page</p>")
    assert written.read_text() == "<p>page</p>" and [p.name for p in (reports / "sub").iterdir()] == [
        "r.html"
    ]


async def test_head_never_writes_the_report(
    api: httpx.AsyncClient, as_role: dict[Role | None, httpx.AsyncClient], graph: Graph, settings: Settings
) -> None:
    # HEAD must be safe (RFC 9110 §9.2.1): `save_to_file=true` on it, even an operator's,
    # writes no report and records none. HEAD is served as GET without the body, except
    # where the GET would write: 405, Allow: GET (compat_rest.routing).
    image = await _image(graph)
    page = f"/api/qa/images/{image['imageId']}/validation-report.html"
    recorded = '{ qaArtifacts(first: 100, filter: {kinds: ["report"]}) { totalCount } }'
    before = _listing(_reports(settings))
    on_record = await graph.data(recorded)  # the session's database: other tests' reports

    for client in (api, as_role[None], as_role[Role.VIEWER]):
        head = await client.head(page, params={"save_to_file": "true"})
        assert head.status_code == 405 and head.headers["allow"] == "GET", head.headers

    assert _listing(_reports(settings)) == before
    assert await graph.data(recorded) == on_record
    # The same request as GET does write: the check above is not vacuous.
    saved = await api.get(page, params={"save_to_file": "true"})
    assert saved.status_code == 200 and _listing(_reports(settings)) != before
