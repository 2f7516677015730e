"""User-given names and paths: an allow-list of characters, and paths that stay under their roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dsa110.errors import InputError
from dsa110.names import resolve_under, safe_label, safe_name

HOSTILE = [
    "../../../../etc/cron.d/x",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "..",
    ".hidden",
    "-rf",
    "x..y",
    "name\x00",
    "line\nbreak",
    "$(reboot)",
    "a;b",
    "",
    " padded",
    "x" * 129,
    "émoji✨",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_names_are_refused_with_a_code(value: str) -> None:
    for check in (safe_name, safe_label):
        with pytest.raises(InputError) as refused:
            check(value, "name")
        assert refused.value.code == "BAD_NAME" and refused.value.details == {"field": "name"}


def test_ordinary_names_pass() -> None:
    for name in ("mosaic_2025-10-24", "J1331+3030", "3C286", "ops@dsa110", "v1.2"):
        assert safe_name(name) == name
    for label in ("src region", "NVSS J123456+420312 (box)", "ring #2, west"):
        assert safe_label(label) == label
    with pytest.raises(InputError):
        safe_name("has space")


def test_paths_resolve_under_their_roots(tmp_path: Path) -> None:
    root = tmp_path / "products"
    (root / "mosaics").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, root / "escape")
    assert resolve_under("mosaics/new.fits", [root]) == (root / "mosaics" / "new.fits").resolve()
    assert resolve_under(str(root / "mosaics" / "a.fits"), [root]).parent == (root / "mosaics").resolve()
    for bad in ("../elsewhere/x.fits", "escape/x.fits", "/etc/cron.d/x", "mosaics/../../x", "a\x00b", ""):
        with pytest.raises(InputError) as refused:
            resolve_under(bad, [root])
        assert refused.value.code == "BAD_PATH", bad
    second = tmp_path / "scratch"
    second.mkdir()
    assert resolve_under(str(second / "x"), [root, second]) == (second / "x").resolve()


def test_output_roots_come_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dsa110.settings import Settings

    assert Settings(data_dir=tmp_path).output_roots == (tmp_path,)
    monkeypatch.setenv("DSA110_OUTPUT_DIRS", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    roots = Settings.from_env().output_roots
    assert roots == ((tmp_path / "a").resolve(), (tmp_path / "b").resolve())
    with pytest.raises(InputError):
        resolve_under(str(tmp_path / "c" / "x.fits"), roots)
