"""Swagger UI for the REST compatibility layer, served with no internet access.

Observatory networks are often isolated, so the page loads nothing from a CDN: the
swagger-ui-dist files are vendored in ``compat_rest/static/swagger/`` (see
``scripts/vendor_assets.sh``) and served by :func:`swagger_static_app`.

Wiring (the static mount must be reachable at ``static_prefix``)::

    Route("/api/docs", lambda request: HTMLResponse(swagger_html()))
    Mount("/api/docs/static", app=swagger_static_app())

This module also holds the small page renderer that the GraphiQL page
(``server.graphiql``) shares, because ``server`` may import ``compat_rest`` but not the
other way round.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from starlette.staticfiles import StaticFiles

SWAGGER_STATIC_DIR = Path(__file__).resolve().parent / "static" / "swagger"

# Our own bootstrap script sits beside the vendored files so the page carries no inline
# JavaScript (a Content-Security-Policy of `script-src 'self'` is enough).
_SWAGGER_STYLESHEETS = ("swagger-ui.css",)
_SWAGGER_SCRIPTS = ("swagger-ui-bundle.js", "dsa110-swagger.js")

# An absolute path on the page's own origin, made only of RFC 3986 path characters.
# "//host" and "/\\host" are rejected: browsers read both as another origin, and they
# drop tabs and newlines from URLs, so no whitespace or control character is allowed.
_SAME_ORIGIN_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_MAX_PATH_LENGTH = 2048


def same_origin_path(value: str, name: str) -> str:
    """Return ``value`` if it is an absolute URL path on the page's own origin.

    Pages built here must never load code from another host, so a scheme, a
    protocol-relative ``//host`` or a character a browser would reinterpret is an error.
    """
    if (
        not isinstance(value, str)
        or len(value) > _MAX_PATH_LENGTH
        or _SAME_ORIGIN_PATH.fullmatch(value) is None
    ):
        raise ValueError(
            f"{name} must be an absolute path on this server such as '/graphql', got {value!r:.100}"
        )
    return value


def asset_url(static_prefix: str, filename: str) -> str:
    """URL of a vendored file under the path where its static app is mounted."""
    return f"{static_prefix.rstrip('/')}/{filename}"


def render_offline_page(
    *,
    title: str,
    static_prefix: str,
    stylesheets: Sequence[str],
    scripts: Sequence[str],
    root_id: str,
    config: Mapping[str, str],
    inline_css: str,
) -> str:
    """HTML page whose only external resources are files under ``static_prefix``.

    ``config`` reaches the bootstrap script as JSON in the root element's
    ``data-config`` attribute: HTML-escaping an attribute is simple and complete,
    whereas embedding JSON in an inline script needs care with ``</script>``.
    """
    prefix = same_origin_path(static_prefix, "static_prefix")
    links = "\n".join(
        f'    <link rel="stylesheet" href="{html.escape(asset_url(prefix, name))}">' for name in stylesheets
    )
    script_tags = "\n".join(
        f'    <script src="{html.escape(asset_url(prefix, name))}"></script>' for name in scripts
    )
    config_attr = html.escape(json.dumps(dict(config)), quote=True)
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{html.escape(title)}</title>
    <link rel="icon" href="data:,">
{links}
    <style>{inline_css}</style>
  </head>
  <body>
    <div id="{html.escape(root_id)}" data-config="{config_attr}">Loading...</div>
{script_tags}
  </body>
</html>
"""


def swagger_html(openapi_url: str = "/api/openapi.json", static_prefix: str = "/api/docs/static") -> str:
    """Swagger UI page for the OpenAPI document at ``openapi_url``, all assets local."""
    return render_offline_page(
        title="DSA-110 REST API",
        static_prefix=static_prefix,
        stylesheets=_SWAGGER_STYLESHEETS,
        scripts=_SWAGGER_SCRIPTS,
        root_id="swagger-ui",
        config={"openapiUrl": same_origin_path(openapi_url, "openapi_url")},
        inline_css="body { margin: 0; }",
    )


def swagger_static_app() -> StaticFiles:
    """ASGI app serving the vendored Swagger UI files; mount it at ``static_prefix``."""
    return StaticFiles(directory=SWAGGER_STATIC_DIR)
