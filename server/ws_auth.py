"""Credentials in a GraphQL WebSocket's ``connection_init`` payload (both protocols).

Browsers cannot set headers on a WebSocket, so a client may send them in the payload
instead: ``{"Authorization": "Bearer <key or token>"}`` or ``{"X-API-Key": "<key>"}``
(names in any case; GraphiQL sends its Headers pane this way). A credential in the
payload wins over one sent with the upgrade request. Every operation on the connection
then runs as that identity, and a revoked key's connection is closed with 4403
(``server.credential_streams``); an anonymous connection is refused here when anonymous
reads are off (graphql-transport-ws closes with 4403, graphql-ws answers
``connection_error`` with the code).
"""

from __future__ import annotations

from typing import Any

from strawberry.exceptions import ConnectionRejectionError

from dsa110.auth.authenticator import Authenticator, credential_from
from dsa110.auth.identity import IDENTITY_SCOPE_KEY, Unauthenticated, identity_in
from dsa110.errors import PublicError
from dsa110.settings import Settings
from resolvers.context import GraphContext
from server.credential_streams import GUARD_SCOPE_KEY, StreamGuard


async def authenticate_connection(
    context: GraphContext, authenticator: Authenticator, settings: Settings
) -> None:
    """Set the connection's identity from its ``connection_init`` payload, or refuse it."""
    websocket: Any = context.request
    scope = websocket.scope
    identity = identity_in(scope)
    params = context.connection_params
    try:
        credential = credential_from(params) if isinstance(params, dict) else None
        if credential is not None:
            identity = await authenticator.identify(credential, identity.address)
        if identity.anonymous and not settings.anonymous_read:
            raise Unauthenticated("this server needs credentials: send them in the connection_init payload")
    except PublicError as exc:
        raise ConnectionRejectionError({"message": exc.message, "extensions": {"code": exc.code}}) from None
    scope[IDENTITY_SCOPE_KEY] = identity
    context.identity = identity
    guard = scope.get(GUARD_SCOPE_KEY)
    if isinstance(guard, StreamGuard):
        # Registered under the key it runs as from now on. A revocation that went by while
        # the key's row was read is remembered by the registry, which then ends it at once.
        guard.bind(identity)
