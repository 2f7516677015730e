"""``dsa110-graph keys create|list|revoke`` as an operator runs it, against a real database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dsa110.auth.keys import verify_key
from dsa110.db.engine import create_engine
from server.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        status = 0
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


async def _verifies(url: str, secret: str) -> bool:
    engine = create_engine(url)
    try:
        return await verify_key(engine, secret) is not None
    finally:
        await engine.dispose()


def test_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite3'}"
    db = ("--database-url", url)
    status, out, _ = _run(capsys, "keys", "create", "--name", "night-ops", "--role", "operator", *db)
    assert status == 0 and "shown once" in out
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("d110_")
    assert asyncio.run(_verifies(url, secret))

    status, out, _ = _run(capsys, "keys", "list", *db)
    assert status == 0 and "night-ops" in out and "operator" in out and secret not in out
    assert secret.split("_")[1] in out  # the public prefix identifies it

    status, _, err = _run(capsys, "keys", "create", "--name", "night-ops", "--role", "viewer", *db)
    assert status == 2 and "exists" in err
    status, _, err = _run(capsys, "keys", "create", "--name", "../../etc/x", *db)
    assert status == 2 and "not a valid name" in err
    status, _, err = _run(capsys, "keys", "create", *db)
    assert status == 2 and "--name is required" in err
    with pytest.raises(SystemExit):
        main(["keys", "create", "--name", "x", "--role", "root", *db])  # argparse refuses the role

    status, out, _ = _run(capsys, "keys", "revoke", "--name", "night-ops", *db)
    assert status == 0 and "revoked" in out
    assert not asyncio.run(_verifies(url, secret))
    status, _, err = _run(capsys, "keys", "revoke", "--name", "nobody", *db)
    assert status == 2 and "no key named" in err
