"""From a credential to an identity: API keys (looked up, cached briefly) and OIDC tokens.

A verified key is trusted for ``DSA110_API_KEY_CACHE_S`` without reading its row again.
A key that loses rights is dropped from the cache sooner: by the process that revoked it
at once (:meth:`Authenticator.revoked`), and by every other process when the event bus
delivers the change (``dsa110.auth.key_events``); the cache's lifetime only bounds the
delay when the bus is down. The same call ends the WebSockets and event streams open with
the key in that process (``dsa110.auth.open_streams``).

Credentials arrive as ``Authorization: Bearer <credential>`` or ``X-API-Key: <key>`` (or
the same names in a WebSocket ``connection_init`` payload); this module sees only the
credential text. Our keys start with ``d110_``; anything else given as a bearer token
is treated as a JWT when an issuer is configured.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.auth.identity import Identity, Unauthenticated, anonymous
from dsa110.auth.keys import KEY_PREFIX, KeyInfo, looks_like_key, verify_key
from dsa110.auth.oidc import OidcConfig, OidcVerifier
from dsa110.auth.open_streams import OpenStreams
from dsa110.settings import Settings

MAX_CREDENTIAL: Final = 8192
MAX_CACHED_KEYS: Final = 1024
CREDENTIAL_NAMES: Final = ("authorization", "x-api-key")
"""Header names (any case) that carry credentials, also as ``connection_init`` payload keys."""


def oidc_config(settings: Settings) -> OidcConfig | None:
    """The OIDC settings, or None when tokens are off; half a configuration is an error."""
    given = (settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks)
    if not any(given):
        return None
    if not all(given):
        raise ValueError("OIDC needs all of DSA110_OIDC_ISSUER, DSA110_OIDC_AUDIENCE and DSA110_OIDC_JWKS")
    return OidcConfig(
        issuer=str(settings.oidc_issuer),
        audience=str(settings.oidc_audience),
        jwks=str(settings.oidc_jwks),
        algorithms=settings.oidc_algorithms,
        role_claim=settings.oidc_role_claim,
        name_claim=settings.oidc_name_claim,
    )


def credential_from(fields: Mapping[str, Any]) -> str | None:
    """The credential among header-like ``fields`` (names in any case), or None.

    ``Authorization`` must use the Bearer scheme; ``X-API-Key`` holds the key itself.
    A field that is present but malformed is an error, not an absence.
    """
    lowered = {str(k).lower(): v for k, v in fields.items() if str(k).lower() in CREDENTIAL_NAMES}
    bearer = _bearer(lowered["authorization"]) if "authorization" in lowered else None
    key = _api_key(lowered["x-api-key"]) if "x-api-key" in lowered else None
    if bearer is not None and key is not None and bearer != key:
        # Which one a request acts as must not depend on a precedence the client cannot see.
        raise Unauthenticated("`Authorization` and `X-API-Key` hold different credentials: send one")
    return bearer if bearer is not None else key


def _bearer(value: Any) -> str:
    if not isinstance(value, str):
        raise Unauthenticated("`Authorization` must be text: `Bearer <key or token>`")
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthenticated("`Authorization` must use the Bearer scheme: `Bearer <key or token>`")
    if not credential.strip():
        raise Unauthenticated("`Authorization: Bearer` holds no key or token")
    return _bounded(credential.strip())


def _api_key(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Unauthenticated("`X-API-Key` must hold a key")
    return _bounded(value.strip())


def _bounded(credential: str) -> str:
    if len(credential) > MAX_CREDENTIAL:
        raise Unauthenticated(f"the credential is longer than {MAX_CREDENTIAL} characters")
    return credential


class Authenticator:
    """Verifies credentials for one server process (its key cache is per process)."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.cache_s = settings.api_key_cache_s
        config = oidc_config(settings)
        self.oidc = OidcVerifier(config) if config is not None else None
        self._keys: dict[str, tuple[float, KeyInfo]] = {}
        # Counts the forgets: a lookup that read a key's row before a revocation and
        # finishes after it must not put the key back into the cache it was dropped from.
        self._generation = 0
        self.streams = OpenStreams()
        """This process's WebSockets and event streams by the key they run as."""

    def forget(self, prefix: str) -> None:
        """Stop trusting the cached key with public ``prefix``: its next use reads its row."""
        self._generation += 1
        for key in [k for k, (_, info) in self._keys.items() if info.prefix == prefix]:
            del self._keys[key]

    def revoked(self, prefix: str) -> None:
        """The key with public ``prefix`` was revoked: refuse it from its next request on,
        and end the connections open with it (which would otherwise never ask again)."""
        self.forget(prefix)
        self.streams.revoked(prefix)

    def forget_all(self) -> None:
        """Stop trusting every cached key (key changes may have been missed: a bus reconnect)."""
        self._generation += 1
        self._keys.clear()

    async def identify(self, credential: str | None, address: str | None) -> Identity:
        """Anonymous without a credential; the key's or token's identity; else ``Unauthenticated``."""
        if credential is None:
            return anonymous(address)
        if looks_like_key(credential):
            info = await self._key(credential)
            if info is None:
                raise Unauthenticated("unknown or revoked API key")
            return Identity("key", f"key:{info.name}", info.role, address, info.prefix)
        if self.oidc is None:
            raise Unauthenticated(
                f"not an API key (keys start with `{KEY_PREFIX}`), and bearer tokens are not "
                "accepted here (no OIDC issuer configured)"
            )
        return (await self.oidc.verify(credential)).at(address)

    async def _key(self, key: str) -> KeyInfo | None:
        now = time.monotonic()
        cached = self._keys.get(key)
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        generation = self._generation
        info = await verify_key(self.engine, key)
        if info is None:
            self._keys.pop(key, None)
            return None
        if generation != self._generation:
            return info  # a key changed meanwhile: answer from the row read, cache nothing
        if len(self._keys) >= MAX_CACHED_KEYS:
            self._keys.clear()
        self._keys[key] = (now, info)
        return info
