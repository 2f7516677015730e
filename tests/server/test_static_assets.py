"""GraphiQL and Swagger UI work with no internet: every asset is local and served.

Observatory networks are often isolated, so a page that reaches for a CDN shows a blank
screen. These tests read the pages as a browser would (every src/href), check each asset
exists and is served with a script or style type, and that hostile settings cannot point
the pages at another host.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from compat_rest.swagger import SWAGGER_STATIC_DIR, swagger_html, swagger_static_app
from server.graphiql import DEFAULT_QUERY, GRAPHIQL_STATIC_DIR, graphiql_html, graphiql_static_app
from server.home import home


@dataclass
class PageRefs(HTMLParser):
    """Every URL a browser would fetch or follow from a page, plus the root config."""

    scripts: list[str] = field(default_factory=list)
    stylesheets: list[str] = field(default_factory=list)
    other_urls: list[str] = field(default_factory=list)
    configs: list[str] = field(default_factory=list)
    metas: dict[str, str] = field(default_factory=dict)
    inline_scripts: int = 0

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "meta" and "name" in values:
            self.metas[values["name"]] = values.get("content", "")
        if tag == "script":
            if "src" in values:
                self.scripts.append(values["src"])
            else:
                self.inline_scripts += 1
        elif tag == "link" and values.get("rel") == "stylesheet":
            self.stylesheets.append(values["href"])
        else:
            self.other_urls.extend(values[name] for name in ("src", "href", "action") if name in values)
        if "data-config" in values:
            self.configs.append(values["data-config"])

    @property
    def all_urls(self) -> list[str]:
        return self.scripts + self.stylesheets + self.other_urls


def parse_page(page: str) -> PageRefs:
    refs = PageRefs()
    refs.feed(page)
    refs.close()
    return refs


def is_same_origin(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("", "data") and not parts.netloc and not url.startswith(("//", "/\\"))


@dataclass(frozen=True)
class Page:
    name: str
    render: Callable[[], str]
    static_prefix: str
    static_dir: Path
    static_app: Callable[[], StaticFiles]


PAGES = [
    Page("graphiql", graphiql_html, "/graphql/static", GRAPHIQL_STATIC_DIR, graphiql_static_app),
    Page(
        "graphiql-custom-prefix",
        lambda: graphiql_html("/api/graphql", "/assets/graphiql/"),
        "/assets/graphiql",
        GRAPHIQL_STATIC_DIR,
        graphiql_static_app,
    ),
    Page("swagger", swagger_html, "/api/docs/static", SWAGGER_STATIC_DIR, swagger_static_app),
    Page(
        "swagger-custom-prefix",
        lambda: swagger_html("/v1/openapi.json", "/docs-assets"),
        "/docs-assets",
        SWAGGER_STATIC_DIR,
        swagger_static_app,
    ),
]


def local_asset_path(page: Page, url: str) -> Path:
    assert url.startswith(page.static_prefix + "/"), url
    return page.static_dir / url.removeprefix(page.static_prefix + "/")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_references_nothing_outside_its_own_origin(page: Page) -> None:
    refs = parse_page(page.render())
    assert refs.scripts and refs.stylesheets
    assert [url for url in refs.all_urls if not is_same_origin(url)] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_has_no_inline_script(page: Page) -> None:
    # Keeps the pages usable under a Content-Security-Policy of script-src 'self'.
    assert parse_page(page.render()).inline_scripts == 0


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_referenced_asset_exists_on_disk(page: Page) -> None:
    refs = parse_page(page.render())
    for url in refs.scripts + refs.stylesheets:
        assert local_asset_path(page, url).is_file(), url


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
async def test_every_referenced_asset_is_served_with_a_script_or_style_type(page: Page) -> None:
    app = Starlette(routes=[Mount(page.static_prefix, app=page.static_app())])
    refs = parse_page(page.render())
    expected = [(url, ("text/javascript", "application/javascript")) for url in refs.scripts] + [
        (url, ("text/css",)) for url in refs.stylesheets
    ]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        for url, content_types in expected:
            response = await client.get(url)
            assert response.status_code == 200, url
            assert response.headers["content-type"].split(";")[0] in content_types, url
            assert response.content == local_asset_path(page, url).read_bytes()


async def home_page() -> str:
    app = Starlette(routes=[Route("/", home)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/", headers={"accept": "text/html"})
    assert response.headers["content-type"].startswith("text/html")
    return response.text


async def test_home_page_links_only_this_server() -> None:
    refs = parse_page(await home_page())
    assert refs.other_urls and [url for url in refs.all_urls if not is_same_origin(url)] == []
    assert refs.scripts == [] and refs.inline_scripts == 0


@pytest.mark.parametrize(
    "render",
    [graphiql_html, swagger_html, home_page],
    ids=["graphiql", "swagger", "home"],
)
async def test_every_page_a_person_opens_is_laid_out_for_the_screen_it_is_on(
    render: Callable[[], Any],
) -> None:
    # Without it a phone lays the page out 980 px wide and shrinks it to fit.
    page = render()
    page = await page if asyncio.iscoroutine(page) else page
    viewport = parse_page(page).metas.get("viewport", "")
    assert "width=device-width" in viewport and "initial-scale=1" in viewport


def test_graphiql_loads_react_before_the_libraries_that_need_it() -> None:
    names = [Path(url).name for url in parse_page(graphiql_html()).scripts]
    assert names.index("react.production.min.js") < names.index("react-dom.production.min.js")
    assert names.index("react-dom.production.min.js") < names.index("graphiql.min.js")
    assert names.index("graphql-ws.min.js") < names.index("dsa110-graphiql.js")
    assert names[-1] == "dsa110-graphiql.js"


def test_graphiql_loads_our_stylesheet_after_graphiqls() -> None:
    # Same specificity, so the later sheet wins: ours must come after the vendored one.
    names = [Path(url).name for url in parse_page(graphiql_html()).stylesheets]
    assert names == ["graphiql.min.css", "dsa110-graphiql.css"]


@pytest.mark.parametrize("page", [PAGES[0], PAGES[2]], ids=lambda p: p.name)
def test_every_file_of_ours_beside_the_vendored_ones_is_loaded_by_the_page(page: Page) -> None:
    # Our dsa110-* files (boot script, layout) do nothing unless the page links them.
    loaded = {
        local_asset_path(page, url).name for url in parse_page(page.render()).all_urls if url.startswith("/")
    }
    ours = {path.name for path in page.static_dir.glob("dsa110-*")}
    assert ours and ours <= loaded


def test_graphiql_stacks_the_result_under_the_editors_on_a_phone() -> None:
    # GraphiQL keeps the editors' width side by side with the result: at 390 px wide the
    # result was a 50 px column. Below the breakpoint the session is a column instead.
    css = (GRAPHIQL_STATIC_DIR / "dsa110-graphiql.css").read_text(encoding="utf-8")
    query = re.search(r"@media \(max-width: (\d+)px\) \{(.*)\}\s*$", css, re.S)
    assert query is not None and 390 < int(query.group(1)) < 768
    rules = re.sub(r"/\*.*?\*/", "", query.group(2), flags=re.S)
    assert re.search(r"\.graphiql-session \{\s*flex-direction: column;", rules)


def test_graphiql_config_reaches_the_page_intact() -> None:
    (config,) = parse_page(graphiql_html("/graphql")).configs
    assert json.loads(config) == {"endpoint": "/graphql", "defaultQuery": DEFAULT_QUERY}


def test_swagger_config_names_the_openapi_document() -> None:
    (config,) = parse_page(swagger_html("/api/openapi.json")).configs
    assert json.loads(config) == {"openapiUrl": "/api/openapi.json"}


def test_hostile_default_query_stays_data() -> None:
    hostile = '"></div><script>alert(1)</script><img src="https://evil.example/x.png">'
    page = graphiql_html(default_query=hostile)
    refs = parse_page(page)
    assert "<script>alert" not in page
    assert refs.inline_scripts == 0
    assert all(is_same_origin(url) for url in refs.all_urls)
    assert json.loads(refs.configs[0])["defaultQuery"] == hostile


BAD_PATHS = [
    "https://cdn.example.org/graphql",
    "http://127.0.0.1:8000/graphql",
    "//cdn.example.org/static",
    "/\\cdn.example.org/static",
    "javascript:alert(1)",
    "data:text/javascript,alert(1)",
    "relative/static",
    "",
    "/graphql\t//evil",
    "/graphql\n",
    '/graphql"><script>',
    "/" + "a" * 5000,
]


@pytest.mark.parametrize("bad", BAD_PATHS)
@pytest.mark.parametrize(
    "render",
    [
        lambda bad: graphiql_html(endpoint=bad),
        lambda bad: graphiql_html(static_prefix=bad),
        lambda bad: swagger_html(openapi_url=bad),
        lambda bad: swagger_html(static_prefix=bad),
    ],
    ids=["graphiql-endpoint", "graphiql-static", "swagger-openapi", "swagger-static"],
)
def test_paths_that_leave_the_origin_are_rejected(render: Callable[[str], str], bad: str) -> None:
    with pytest.raises(ValueError, match="absolute path on this server"):
        render(bad)


@pytest.mark.parametrize("static_dir", [GRAPHIQL_STATIC_DIR, SWAGGER_STATIC_DIR], ids=["graphiql", "swagger"])
def test_vendored_files_match_their_recorded_checksums(static_dir: Path) -> None:
    # A truncated, re-encoded or hand-edited asset breaks the page in a way no Python
    # test would otherwise notice; scripts/vendor_assets.sh writes SHA256SUMS.
    lines = (static_dir / "SHA256SUMS").read_text().splitlines()
    assert lines
    for line in lines:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((static_dir / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("static_dir", [GRAPHIQL_STATIC_DIR, SWAGGER_STATIC_DIR], ids=["graphiql", "swagger"])
def test_every_vendored_package_has_a_version_and_licence_text(static_dir: Path) -> None:
    rows = [
        line.split("\t")
        for line in (static_dir / "VERSIONS.txt").read_text().splitlines()
        if not line.startswith("#")
    ]
    assert rows
    for name, version, licence, integrity in rows:
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), name
        assert licence in ("MIT", "Apache-2.0"), name
        assert integrity.startswith("sha512-"), name
        assert (static_dir / "licenses" / f"{name}.txt").stat().st_size > 0


@pytest.mark.parametrize("static_dir", [GRAPHIQL_STATIC_DIR, SWAGGER_STATIC_DIR], ids=["graphiql", "swagger"])
def test_vendored_stylesheets_load_nothing_remote(static_dir: Path) -> None:
    for css in static_dir.glob("*.css"):
        text = css.read_text(encoding="utf-8")
        assert "@import" not in text, css.name
        # Quoted SVG data URLs contain ')' and xmlns URLs, so only the start of each
        # url(...) is judged: data: is inline, anything else would be fetched.
        for target in re.findall(r"url\(\s*['\"]?([^'\")\s]{0,16})", text):
            assert target.startswith("data:"), (css.name, target)


@pytest.mark.parametrize(
    ("prefix", "static_app", "module_file"),
    [
        ("/graphql/static", graphiql_static_app, GRAPHIQL_STATIC_DIR.parent.parent / "graphiql.py"),
        ("/api/docs/static", swagger_static_app, SWAGGER_STATIC_DIR.parent.parent / "swagger.py"),
    ],
    ids=["graphiql", "swagger"],
)
async def test_static_mount_serves_no_file_outside_its_directory(
    prefix: str, static_app: Callable[[], StaticFiles], module_file: Path
) -> None:
    # The module two levels up exists, so a 404 means the mount refused to climb out.
    # Dots are percent-encoded because httpx would resolve a literal "../" itself.
    assert await asyncio.to_thread(module_file.is_file)
    app = Starlette(routes=[Mount(prefix, app=static_app())])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        for path in (
            f"/%2e%2e/%2e%2e/{module_file.name}",
            f"/..%2f..%2f{module_file.name}",
            f"/%2e%2e%2f%2e%2e%2f{module_file.name}",
            "/missing.js",
        ):
            response = await client.get(prefix + path)
            assert response.status_code == 404, path
