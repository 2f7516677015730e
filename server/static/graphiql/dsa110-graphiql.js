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
        // 4403 (a revoked key, or no key where reading needs one) comes back on every retry
        // with the same credentials: end the subscription at once with the server's reason
        // instead of retrying for half a minute and then reporting a bare "Forbidden".
        shouldRetry: function (closeEvent) {
          return !(closeEvent && closeEvent.code === 4403);
        },
      });
      fetchers[key] = {
        http: GraphiQL.createFetcher({ url: httpUrl.href }),
        ws: wsClient,
      };
    }
    return fetchers[key];
  }

  // Whether the operation GraphiQL runs is a subscription: the named one, or the only one.
  function isSubscription(documentAST, operationName) {
    var operations = ((documentAST && documentAST.definitions) || []).filter(function (d) {
      return d.kind === "OperationDefinition";
    });
    var chosen = operations.filter(function (d) {
      return operationName ? d.name && d.name.value === operationName : operations.length === 1;
    });
    return chosen.length === 1 && chosen[0].operation === "subscription";
  }

  // A subscription's results, as the async iterator GraphiQL reads. graphql-ws's own
  // iterator, not GraphiQL's websocket fetcher: that one leaves an unhandled promise
  // rejection (a console error) behind whenever the server refuses a subscription, a
  // misspelt field say, beside the errors it shows. A closed socket is told in the result
  // pane as a GraphQL-style error with its close code and reason (4403 "credential
  // revoked"), not as a JavaScript Error, which GraphiQL would show with its stack.
  function subscribe(wsClient, params) {
    var results = wsClient.iterate({
      query: params.query,
      variables: params.variables,
      operationName: params.operationName,
    });
    function explain(error) {
      if (error && typeof error.code === "number" && "reason" in error) {
        throw [
          {
            message: ("the subscription's socket closed: " + error.code + " " + error.reason).trim(),
            extensions: { closeCode: error.code, reason: error.reason },
          },
        ];
      }
      throw error;
    }
    var iterator = {
      next: function () {
        return results.next().catch(explain);
      },
      return: function () {
        return results.return();
      },
    };
    iterator[Symbol.asyncIterator] = function () {
      return iterator;
    };
    return iterator;
  }

  function fetcher(params, options) {
    var chosen = fetcherFor(credentialsOf(options && options.headers));
    if (isSubscription(options && options.documentAST, params.operationName)) {
      return subscribe(chosen.ws, params);
    }
    return chosen.http(params, options);
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
