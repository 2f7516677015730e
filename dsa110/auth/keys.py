"""API keys: made once, shown once, stored hashed.

A key reads ``d110_<prefix>_<secret>``: ``prefix`` (12 hex digits) is public and finds
the row; the whole key's SHA-256 is what is stored. Keys are 256-bit random, so a fast
hash is enough (a slow one guards low-entropy passwords, which these are not) and the
check costs microseconds per request. Revoked keys stay listed with their revocation
time, so the audit log's ``key:<name>`` entries keep meaning something.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.auth.identity import Role
from dsa110.db.tables import api_keys
from dsa110.db.writes import write_transaction
from dsa110.errors import ConflictError, InputError, NotFoundError
from dsa110.names import safe_name

KEY_PREFIX: Final = "d110_"
PREFIX_HEX: Final = 12
MAX_KEY_NAME: Final = 48  # `key:<name>` must fit the 64-character audit columns
_KEY_LENGTH: Final = len(KEY_PREFIX) + PREFIX_HEX + 1 + 43  # token_urlsafe(32) is 43 characters


@dataclass(frozen=True)
class KeyInfo:
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewKey:
    info: KeyInfo
    secret: str
    """The whole key; it is not stored and cannot be shown again."""


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(credential: str) -> bool:
    """Whether ``credential`` has the form of one of our keys (else it may be a JWT)."""
    return credential.startswith(KEY_PREFIX)


def prefix_of(key: str) -> str | None:
    """The public prefix of a well-formed key, or None."""
    if len(key) != _KEY_LENGTH or not key.startswith(KEY_PREFIX):
        return None
    prefix = key[len(KEY_PREFIX) : len(KEY_PREFIX) + PREFIX_HEX]
    if key[len(KEY_PREFIX) + PREFIX_HEX] != "_" or any(c not in "0123456789abcdef" for c in prefix):
        return None
    return prefix


def _info(row: Row[Any]) -> KeyInfo:
    return KeyInfo(
        name=row.name,
        role=Role(row.role),
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _role(role: Role | str) -> Role:
    parsed = Role.parse(role) if not isinstance(role, Role) else role
    if parsed is None:
        raise InputError(f"unknown role {str(role)[:32]!r}; use one of {', '.join(Role)}", field="role")
    return parsed


async def create_key(engine: AsyncEngine, name: str, role: Role | str) -> NewKey:
    """A new key named ``name`` with ``role``; names are unique, also among revoked keys."""
    clean = safe_name(name, "name", MAX_KEY_NAME)
    checked = _role(role)
    prefix = secrets.token_hex(PREFIX_HEX // 2)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    now = datetime.now(UTC)
    try:
        async with write_transaction(engine) as conn:
            await conn.execute(
                insert(api_keys).values(
                    prefix=prefix,
                    name=clean,
                    role=checked.value,
                    secret_sha256=digest(secret),
                    created_at=now,
                )
            )
    except IntegrityError:
        raise ConflictError(f"a key named {clean!r} exists already", name=clean) from None
    return NewKey(KeyInfo(clean, checked, prefix, now, None), secret)


async def list_keys(engine: AsyncEngine) -> list[KeyInfo]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(api_keys).order_by(api_keys.c.id))).all()
    return [_info(row) for row in rows]


async def revoke_key(engine: AsyncEngine, name: str) -> KeyInfo:
    """Revoke the key named ``name`` (idempotent: a revoked key keeps its first revocation time)."""
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        row = (await conn.execute(select(api_keys).where(api_keys.c.name == name))).first()
    if row is None:
        raise NotFoundError(f"no key named {name[:64]!r}", name=name[:64])
    return _info(row)


async def revoked_among(engine: AsyncEngine, prefixes: list[str]) -> list[str]:
    """Those of ``prefixes`` whose keys are revoked (a few hundred per query, far under any
    backend's limit on bound parameters)."""
    found: list[str] = []
    for start in range(0, len(prefixes), 500):
        chunk = prefixes[start : start + 500]
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(api_keys.c.prefix).where(
                    api_keys.c.prefix.in_(chunk), api_keys.c.revoked_at.is_not(None)
                )
            )
            found.extend(row.prefix for row in rows)
    return found


async def verify_key(engine: AsyncEngine, key: str) -> KeyInfo | None:
    """The active key ``key`` is, or None (malformed, unknown, wrong secret or revoked)."""
    prefix = prefix_of(key)
    if prefix is None:
        return None
    async with engine.connect() as conn:
        row = (await conn.execute(select(api_keys).where(api_keys.c.prefix == prefix))).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_sha256, digest(key)):
        return None
    return _info(row)
