"""schema.graphql is the reviewed contract: a schema change must come with its SDL."""

from __future__ import annotations

from pathlib import Path

from dsa110.settings import Settings
from schema.schema import build_schema

SDL = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_exported_sdl_matches_the_schema() -> None:
    current = build_schema(Settings()).as_str() + "\n"
    assert SDL.exists(), "run `make schema` and commit schema.graphql"
    assert SDL.read_text() == current, (
        "the schema changed: review it, run `make schema`, commit schema.graphql"
    )
