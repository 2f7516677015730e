"""GraphiQL explorer page that works with no internet access.

strawberry's built-in page loads React and GraphiQL from a CDN, which fails on isolated
observatory networks. This page loads only files vendored in ``server/static/graphiql/``
(see ``scripts/vendor_assets.sh``) and served by :func:`graphiql_static_app`. Queries and
mutations go over HTTP POST to ``endpoint``; subscriptions use the graphql-transport-ws
protocol on the same path (``ws://`` or ``wss://`` following the page's own scheme).

Wiring with strawberry (the static mount must be reachable at ``static_prefix``, and it
must come before any ``Mount("/graphql", ...)``; a ``Route`` carries HTTP only, so the
WebSocket needs its own ``WebSocketRoute``)::

    class DsaGraphQL(strawberry.asgi.GraphQL):
        async def render_graphql_ide(self, request: Request) -> Response:
            return HTMLResponse(graphiql_html())

    graphql_app = DsaGraphQL(schema)
    routes = [
        Mount("/graphql/static", app=graphiql_static_app()),
        Route("/graphql", graphql_app),
        WebSocketRoute("/graphql", graphql_app),
    ]
"""

from __future__ import annotations

from pathlib import Path

from starlette.staticfiles import StaticFiles

from compat_rest.swagger import render_offline_page, same_origin_path

GRAPHIQL_STATIC_DIR = Path(__file__).resolve().parent / "static" / "graphiql"

# Ours after GraphiQL's, so that its narrow-screen layout overrides the vendored one.
_GRAPHIQL_STYLESHEETS = ("graphiql.min.css", "dsa110-graphiql.css")
# React must load before react-dom and both before GraphiQL's UMD build, which reads the
# `React` and `ReactDOM` globals; graphql-ws defines `graphqlWs`; ours boots the page.
_GRAPHIQL_SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphql-ws.min.js",
    "graphiql.min.js",
    "dsa110-graphiql.js",
)

DEFAULT_QUERY = """\
# DSA-110 pipeline graph explorer.
#   Ctrl-Enter runs the operation, Ctrl-Space completes a field,
#   and the Docs pane (book icon) browses every type.
#
# The most variable sources: eta is the weighted reduced chi-square of a
# light curve about its mean, V its flux standard deviation over the mean.
query VariableSources {
  sources(first: 20, filter: { etaMin: 2.0, vMin: 0.05 }) {
    totalCount
    edges {
      node {
        sourceId
        raDeg
        decDeg
        nEpochs
        meanFluxJy
        v
        eta
        chi2Nu
      }
    }
  }
}

# Subscriptions run live over WebSocket on the same URL, for example:
# subscription { pipelineStatus { ... } }
"""


def graphiql_html(
    endpoint: str = "/graphql",
    static_prefix: str = "/graphql/static",
    *,
    default_query: str = DEFAULT_QUERY,
) -> str:
    """GraphiQL page for the GraphQL server at ``endpoint``, all assets local.

    ``default_query`` fills new tabs; a ``?q=`` (and ``?variables=``) in the page URL wins,
    so a query can be shared as a link (``?query=`` would make strawberry execute the GET).
    """
    return render_offline_page(
        title="DSA-110 GraphiQL",
        static_prefix=static_prefix,
        stylesheets=_GRAPHIQL_STYLESHEETS,
        scripts=_GRAPHIQL_SCRIPTS,
        root_id="graphiql",
        config={"endpoint": same_origin_path(endpoint, "endpoint"), "defaultQuery": default_query},
        inline_css="html, body { height: 100%; margin: 0; overflow: hidden; } #graphiql { height: 100vh; }",
    )


def graphiql_static_app() -> StaticFiles:
    """ASGI app serving the vendored GraphiQL files; mount it at ``static_prefix``."""
    return StaticFiles(directory=GRAPHIQL_STATIC_DIR)
