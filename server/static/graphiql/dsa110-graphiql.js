// Starts GraphiQL for the endpoint named by the page (data-config on #graphiql).
// Written for this project; the vendored UMD builds define React, ReactDOM, graphqlWs
// and GraphiQL. Queries and mutations use HTTP; subscriptions use graphql-transport-ws
// on the same path, ws: or wss: following the page. An API key or token goes in the
// Headers pane; it is never stored (shouldPersistHeaders: false).
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var config = JSON.parse(root.getAttribute("data-config"));

  var httpUrl = new URL(config.endpoint, window.location.href);
  var wsUrl = new URL(httpUrl.href);
  wsUrl.protocol = httpUrl.protocol === "https:" ? "wss:" : "ws:";
  wsUrl.hash = "";

  // Credentials typed in the Headers pane ({"Authorization": "Bearer d110_..."}) go with
  // every HTTP request, and, since a browser cannot set headers on a WebSocket, in the
  // connection_init payload of the subscription socket. One socket per credential: a
  // changed key opens a new socket rather than reusing one authenticated as another.
  var fetchers = {};

  function credentialsOf(headers) {
    var out = {};
    Object.keys(headers || {}).forEach(function (name) {
      var lower = name.toLowerCase();
      if (lower === "authorization" || lower === "x-api-key") {
        out[name] = headers[name];
      }
    });
    return out;
  }

  function fetcherFor(credentials) {
    var key = JSON.stringify(credentials);
    if (!fetchers[key]) {
      var wsClient = graphqlWs.createClient({
        url: wsUrl.href,
        connectionParams: credentials,
        // Open the socket on the first subscription, close it when the last one ends.
        lazy: true,
        // Ping so proxies and firewalls do not cut a quiet, long-lived subscription.
        keepAlive: 10000,
        retryAttempts: 5,
      });
      fetchers[key] = GraphiQL.createFetcher({
        url: httpUrl.href,
        subscriptionUrl: wsUrl.href,
        wsClient: wsClient,
      });
    }
    return fetchers[key];
  }

  function fetcher(params, options) {
    return fetcherFor(credentialsOf(options && options.headers))(params, options);
  }

  // ?q= and ?variables= in the address let astronomers share an operation as a link.
  // Not ?query=: a GET with that parameter is executed by strawberry, not shown here.
  var params = new URLSearchParams(window.location.search);
  function remember(key, value) {
    if (value) {
      params.set(key, value);
    } else {
      params.delete(key);
    }
    var search = params.toString();
    window.history.replaceState(null, "", search ? "?" + search : window.location.pathname);
  }

  var props = {
    fetcher: fetcher,
    defaultQuery: config.defaultQuery,
    defaultEditorToolsVisibility: true,
    inputValueDeprecation: true,
    isHeadersEditorEnabled: true,
    // Headers may hold tokens: keep them out of localStorage.
    shouldPersistHeaders: false,
    onEditQuery: function (value) { remember("q", value); },
    onEditVariables: function (value) { remember("variables", value); },
  };
  if (params.has("q")) {
    props.query = params.get("q");
  }
  if (params.has("variables")) {
    props.variables = params.get("variables");
  }

  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, props));
})();
