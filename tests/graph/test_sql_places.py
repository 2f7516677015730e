"""The graph's reads run SQL where ``loaders/registry.py`` says they do, and nowhere else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNS_SQL = re.compile(r"\.(execute|exec_driver_sql)\(|\.connect\(\)|\.begin\(\)")
ALLOWED = {"resolvers/status.py", "resolvers/timeline.py", "resolvers/catalog_validation.py"}
"""Aggregate reads behind the live surfaces, the observing timeline and an image's catalog
validation (see the registry's docstring)."""


def test_only_the_loaders_and_status_reads_run_statements() -> None:
    found = sorted(
        str(path.relative_to(ROOT))
        for layer in ("resolvers", "schema")
        for path in (ROOT / layer).rglob("*.py")
        if RUNS_SQL.search(path.read_text())
    )
    assert set(found) <= ALLOWED, f"SQL outside loaders/ and the listed aggregate reads: {found}"
