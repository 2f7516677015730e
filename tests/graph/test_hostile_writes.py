"""Hostile values in mutations' arguments: a coded 4xx answer, nothing written, the attempt audited.

Three reproductions found by sending hostile values to every mutation as an operator:

* a NUL character in a key (a group id, a source id, a key name): PostgreSQL refuses text
  holding it even in a lookup, and the driver's error came out as ``INTERNAL_SERVER_ERROR``;
* a staged path with a name longer than the file system allows: the path probe raised;
* NaN in a JSON argument (request bodies may hold it): the mutation was refused, but the
  audit row of the attempt was lost (JSON has no NaN, PostgreSQL's json type refuses it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.auth.audit import summarise
from dsa110.auth.identity import Role
from dsa110.db.access_tables import audit_log
from dsa110.db.tables import groups, jobs
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.live.conftest import running, seed

NUL_WRITES = [
    ("mutation($g: String!) { reprocessGroup(groupId: $g) { groupId } }", {"g": "2025-10-24T14:05:00\x00"}),
    ("mutation($g: String) { submitJob(kind: NOOP, groupId: $g) { jobId } }", {"g": "\x00"}),
    ("mutation($s: [String!]) { detectEse(sourceIds: $s) { nSources } }", {"s": ["NVSS J1\x00"]}),
]


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


async def _snapshot(engine: AsyncEngine) -> tuple[list[Any], list[Any]]:
    async with engine.connect() as conn:
        return (
            list((await conn.execute(select(groups).order_by(groups.c.id))).all()),
            list((await conn.execute(select(jobs).order_by(jobs.c.id))).all()),
        )


@pytest.mark.parametrize(("document", "variables"), NUL_WRITES)
async def test_a_nul_character_in_a_key_is_bad_input(
    backend: str,
    empty_db_url: str,
    engine: AsyncEngine,
    tmp_path: Path,
    document: str,
    variables: dict[str, Any],
) -> None:
    await seed(engine)
    ops = await key_headers(engine, Role.OPERATOR)
    before = await _snapshot(engine)
    settings = Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0)
    async with running(settings) as live:
        answer = await live.http.post(
            "/graphql", json={"query": document, "variables": variables}, headers=ops
        )
    codes = _codes(answer.json())
    if backend == "postgresql":  # it refuses text with NUL; SQLite holds it (not found, or no match)
        assert codes == ["BAD_USER_INPUT"], answer.text
    assert "INTERNAL_SERVER_ERROR" not in codes, answer.text
    assert await _snapshot(engine) == before


async def test_a_staged_path_with_a_name_too_long_is_bad_path(
    empty_db_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    ops = await key_headers(engine, Role.OPERATOR)
    document = (
        'mutation($p: String!) { registerDataProduct(dataId: "d1", type: RAW, stagePath: $p) { dataId } }'
    )
    settings = Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0)
    async with running(settings) as live:
        answer = await live.http.post(
            "/graphql", json={"query": document, "variables": {"p": "\U0001f600" * 700}}, headers=ops
        )
    assert _codes(answer.json()) == ["BAD_PATH"], answer.text


async def test_a_refused_attempt_is_audited_without_its_absent_arguments(
    empty_db_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    ops = await key_headers(engine, Role.OPERATOR, name="nan-sender")
    # $g is declared but not sent: an absent argument, not recorded (it was, as an object's repr).
    document = "mutation($p: JSON, $g: String) { submitJob(kind: NOOP, params: $p, groupId: $g) { jobId } }"
    good = json.dumps({"query": document, "variables": {"p": {"message": 1.5}}})
    # NaN is not JSON: refused before anything runs (nothing to audit, nothing written).
    nan = good.replace("1.5", "NaN")
    settings = Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0)
    async with running(settings) as live:
        refused = await live.http.post(
            "/graphql", content=nan, headers={**ops, "content-type": "application/json"}
        )
        answer = await live.http.post(
            "/graphql", content=good, headers={**ops, "content-type": "application/json"}
        )
    assert refused.status_code == 400 and _codes(refused.json()) == ["INVALID_JSON"], refused.text
    assert _codes(answer.json()) == ["BAD_JOB_PARAMS"], answer.text
    async with engine.connect() as conn:
        rows = (
            (await conn.execute(select(audit_log).where(audit_log.c.actor == "key:nan-sender")))
            .mappings()
            .all()
        )
    assert [(r["operation"], r["outcome"], r["arguments"]) for r in rows] == [
        ("submitJob", "BAD_JOB_PARAMS", {"kind": "NOOP", "params": {"message": 1.5}})
    ]


def test_non_finite_numbers_are_audited_as_text() -> None:
    # Python API callers can still pass them; PostgreSQL's json refuses the whole row with them.
    assert summarise({"a": float("nan"), "b": float("inf"), "c": 2.5}) == {"a": "nan", "b": "inf", "c": 2.5}
