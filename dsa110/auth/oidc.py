"""OIDC / JWT bearer tokens, verified against the issuer's published keys (JWKS).

Checked: the signature (with a key from the JWKS, chosen by ``kid``), the algorithm (from
a configured allow-list of asymmetric ones: ``none`` and shared-secret HMAC are never
accepted, since a JWKS publishes public keys), ``iss``, ``aud``, ``exp`` and ``nbf`` (with
30 s of clock skew). The role comes from a configured claim, which may be a dotted path
into nested claims (Keycloak's ``realm_access.roles``) and may hold a string or a list;
the highest role named wins, and a token naming none is refused.

The JWKS is a file (re-read when it changes) or an ``http(s)`` URL, fetched with PyJWT's
client, which caches keys and refetches on an unknown ``kid``; fetching is blocking I/O,
so it runs off the event loop.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt

from dsa110.auth.identity import Forbidden, Identity, Role, Unauthenticated

ASYMMETRIC: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LEEWAY_S: Final = 30.0
MAX_NAME: Final = 200


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks: str
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    role_claim: str = "roles"
    name_claim: str = "sub"

    def __post_init__(self) -> None:
        unsafe = [a for a in self.algorithms if a not in ASYMMETRIC]
        if unsafe or not self.algorithms:
            raise ValueError(
                f"OIDC algorithms must be asymmetric signatures; refused: {unsafe or 'none given'}"
            )


class _FileKeys:
    """A JWKS file, re-read whenever its modification time changes (key rotation)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: float | None = None
        self._keys: jwt.PyJWKSet | None = None

    def key_for(self, kid: str | None) -> jwt.PyJWK:
        stamp = self.path.stat().st_mtime
        if self._keys is None or stamp != self._stamp:
            self._keys = jwt.PyJWKSet.from_dict(json.loads(self.path.read_text()))
            self._stamp = stamp
        keys = self._keys.keys
        if kid is None:
            if len(keys) == 1:
                return keys[0]
            raise Unauthenticated("the token names no signing key (`kid`) and the JWKS has several")
        for key in keys:
            if key.key_id == kid:
                return key
        raise Unauthenticated("the token's signing key is not in the issuer's JWKS")


class _UrlKeys:
    def __init__(self, url: str) -> None:
        self.client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=10)

    def key_for(self, kid: str | None) -> jwt.PyJWK:
        if kid is None:
            keys = self.client.get_signing_keys()
            if len(keys) == 1:
                return keys[0]
            raise Unauthenticated("the token names no signing key (`kid`) and the JWKS has several")
        return self.client.get_signing_key(kid)


class OidcVerifier:
    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        source = config.jwks
        self._keys: _FileKeys | _UrlKeys = (
            _UrlKeys(source) if source.startswith(("https://", "http://")) else _FileKeys(Path(source))
        )

    async def verify(self, token: str) -> Identity:
        """The identity a valid token names; ``Unauthenticated`` or ``Forbidden`` otherwise."""
        return await asyncio.to_thread(self._verify, token)

    def _verify(self, token: str) -> Identity:
        config = self.config
        try:
            header = jwt.get_unverified_header(token)
            kid = header.get("kid")
            key = self._keys.key_for(kid if isinstance(kid, str) else None)
            claims = jwt.decode(
                token,
                key,
                algorithms=list(config.algorithms),
                audience=config.audience,
                issuer=config.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except Unauthenticated:
            raise
        except jwt.PyJWKClientConnectionError:
            raise Unauthenticated("the issuer's keys could not be fetched; try again") from None
        except (jwt.PyJWTError, ValueError, OSError) as exc:
            raise Unauthenticated(f"invalid token: {exc}"[:200]) from None
        role = role_from_claims(claims, config.role_claim)
        if role is None:
            raise Forbidden(f"the token carries no dsa110 role in `{config.role_claim}`")
        name = claims.get(config.name_claim)
        if not isinstance(name, str) or not name:
            raise Unauthenticated(f"the token has no `{config.name_claim}` claim")
        expires_at = float(claims["exp"]) + LEEWAY_S  # required, and checked numeric by PyJWT
        return Identity("oidc", f"oidc:{name[:MAX_NAME]}", role, expires_at=expires_at)


def role_from_claims(claims: dict[str, Any], path: str) -> Role | None:
    """The highest role named at ``path`` (dotted) in ``claims``, which holds a string or a list."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    names = value if isinstance(value, list) else [value]
    roles = [role for role in (Role.parse(v) for v in names) if role is not None]
    return max(roles, key=lambda r: r.rank, default=None)
