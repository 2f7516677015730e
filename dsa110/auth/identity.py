"""Who is asking, and what their role lets them do.

Three roles, each including the one below: ``viewer`` reads; ``operator`` also runs the
pipeline (jobs, streaming, candidate review, regions, reprocessing, publishing);
``admin`` also manages keys, ingests measurements and changes configuration. A caller
without credentials is anonymous: they may read when the deployment allows it, and
never write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from dsa110.errors import PublicError

IDENTITY_SCOPE_KEY: Final = "dsa110.identity"
"""Where the server keeps the caller's identity in an ASGI scope (HTTP request or WebSocket)."""


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def includes(self, other: Role) -> bool:
        """This role may do what ``other`` may (roles are nested: admin > operator > viewer)."""
        return self.rank >= other.rank

    @classmethod
    def parse(cls, value: object) -> Role | None:
        """The role named by ``value`` (any case), or None when it names none."""
        if not isinstance(value, str):
            return None
        try:
            return cls(value.strip().lower())
        except ValueError:
            return None


_RANK: Final = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


class Unauthenticated(PublicError):
    """No credentials where some are needed, or credentials that do not verify (HTTP 401)."""

    code = "UNAUTHENTICATED"


class Forbidden(PublicError):
    """Valid credentials whose role does not allow this (HTTP 403)."""

    code = "FORBIDDEN"


@dataclass(frozen=True)
class Identity:
    """An authenticated caller (``kind`` ``key`` or ``oidc``), or an anonymous one.

    ``name`` is what audit fields record (``changedBy``, ``createdBy``, the audit log):
    ``key:<key name>``, ``oidc:<subject>``, or ``anonymous``. ``address`` is the client's
    network address as the server saw it.
    """

    kind: str
    name: str
    role: Role | None
    address: str | None = None
    key_prefix: str | None = None
    """The public prefix of the API key this identity runs as (``kind`` ``key``): what a
    revocation names, so that the connections open with the key can be ended."""
    expires_at: float | None = None
    """When the credential stops verifying (POSIX seconds, the verifier's leeway included):
    a token's ``exp``. API keys do not expire. A connection open with it ends then."""

    @property
    def anonymous(self) -> bool:
        return self.role is None

    def require(self, role: Role, what: str, *, anonymous_read: bool = False) -> None:
        """Raise ``Unauthenticated`` (anonymous) or ``Forbidden`` (role too low) unless allowed.

        ``anonymous_read``: the deployment lets anonymous callers read, so the ``viewer``
        role is granted to them (and only that role: writes are never anonymous).
        """
        if self.role is None:
            if anonymous_read and role is Role.VIEWER:
                return
            raise Unauthenticated(f"{what} needs credentials with the {role} role (an API key or token)")
        if not self.role.includes(role):
            raise Forbidden(f"{what} needs the {role} role; this {self.kind} has {self.role}", role=str(role))

    @property
    def rate_key(self) -> str:
        """Whose budget a request spends: the identity, or for anonymous callers their address."""
        return f"addr:{self.address or '?'}" if self.anonymous else f"{self.kind}:{self.name}"

    @property
    def author(self) -> str:
        """The name as an audit column of 64 characters holds it."""
        return self.name[:64]

    def at(self, address: str | None) -> Identity:
        return Identity(self.kind, self.name, self.role, address, self.key_prefix, self.expires_at)


def anonymous(address: str | None = None) -> Identity:
    return Identity("anonymous", "anonymous", None, address)


def identity_in(scope: Mapping[str, Any]) -> Identity:
    """The identity the server put in an ASGI scope; anonymous when there is none."""
    found = scope.get(IDENTITY_SCOPE_KEY)
    if isinstance(found, Identity):
        return found
    client = scope.get("client")
    return anonymous(client[0] if client else None)
