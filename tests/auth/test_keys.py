"""API keys: shown once, stored hashed, found by prefix, refused when wrong or revoked."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.auth import keys
from dsa110.auth.identity import Role
from dsa110.db.tables import api_keys
from dsa110.errors import ConflictError, InputError, NotFoundError


async def test_a_key_is_stored_as_its_hash_and_verifies(engine: AsyncEngine) -> None:
    made = await keys.create_key(engine, "pipeline-ops", Role.OPERATOR)
    assert made.secret.startswith(f"d110_{made.info.prefix}_") and len(made.secret) == 61
    async with engine.connect() as conn:
        row = (await conn.execute(select(api_keys))).one()
    assert made.secret not in [str(v) for v in row]  # only the hash is kept
    assert row.secret_sha256 == hashlib.sha256(made.secret.encode()).hexdigest()
    found = await keys.verify_key(engine, made.secret)
    assert found is not None and (found.name, found.role) == ("pipeline-ops", Role.OPERATOR)


async def test_wrong_malformed_and_revoked_keys_do_not_verify(engine: AsyncEngine) -> None:
    made = await keys.create_key(engine, "alice", "viewer")
    tampered = made.secret[:-1] + ("A" if made.secret[-1] != "A" else "B")
    other_prefix = "d110_000000000000_" + made.secret.split("_", 2)[2]
    for bad in (tampered, other_prefix, made.secret[:-1], "d110_", "d110_zzzzzzzzzzzz_" + "x" * 43, ""):
        assert await keys.verify_key(engine, bad) is None, bad
    revoked = await keys.revoke_key(engine, "alice")
    assert revoked.revoked_at is not None
    assert await keys.verify_key(engine, made.secret) is None
    again = await keys.revoke_key(engine, "alice")  # idempotent: the first revocation time stays
    assert again.revoked_at == revoked.revoked_at
    listed = await keys.list_keys(engine)
    assert [(k.name, k.revoked_at is not None) for k in listed] == [("alice", True)]


async def test_names_roles_and_duplicates_are_checked(engine: AsyncEngine) -> None:
    await keys.create_key(engine, "bob", Role.ADMIN)
    with pytest.raises(ConflictError):
        await keys.create_key(engine, "bob", Role.VIEWER)
    for name in ("../x", "a b", "", "x" * 49, "-dash", "semi;colon"):
        with pytest.raises(InputError) as refused:
            await keys.create_key(engine, name, Role.VIEWER)
        assert refused.value.code == "BAD_NAME"
    with pytest.raises(InputError):
        await keys.create_key(engine, "carol", "root")
    with pytest.raises(NotFoundError):
        await keys.revoke_key(engine, "nobody")
