"""Paths clients name stay under the roots; calibrator matching by hand."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from scipy.special import j1

from dsa110.errors import NotFoundError
from dsa110.ops.files.paths import BadPath, Kind, resolve_new_path, resolve_path, resolve_stored
from dsa110.science.calibrators import Calibrator, has_calibrator, match_calibrators, quality


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "data"
    (root / "ms").mkdir(parents=True)
    (root / "ms" / "a.txt").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    os.symlink(outside / "secret", root / "ms" / "escape")
    os.symlink(root / "ms" / "a.txt", root / "ms" / "inside")
    return root, outside


def test_paths_under_the_roots_resolve(roots: tuple[Path, Path]) -> None:
    root, _ = roots
    target = root / "ms" / "a.txt"
    assert resolve_path(str(target), [root]) == target
    assert resolve_path(str(target).lstrip("/"), [root]) == target  # the legacy form
    assert resolve_path("ms/a.txt", [root]) == target  # relative to a root
    assert resolve_path(str(root / "ms" / "inside"), [root]) == target  # a link that stays inside
    assert resolve_path(str(root / "ms"), [root], Kind.DIRECTORY) == root / "ms"


@pytest.mark.parametrize("raw", ["ms/../../outside/secret", "a\x00b", "x\nb", "", "a" * 5000])
def test_bad_paths_are_refused_before_the_disk(roots: tuple[Path, Path], raw: str) -> None:
    with pytest.raises(BadPath):
        resolve_path(raw, [roots[0]])


def test_outside_missing_and_escaping_are_all_not_found(roots: tuple[Path, Path]) -> None:
    root, outside = roots
    for raw in (
        str(outside / "secret"),
        "/etc/passwd",
        str(root / "ms" / "escape"),
        str(root / "ms" / "nope"),
    ):
        with pytest.raises(NotFoundError) as caught:
            resolve_path(raw, [root])
        assert caught.value.message == "no such file or directory under the configured data roots"
    with pytest.raises(NotFoundError):
        resolve_path(str(root / "ms" / "a.txt"), [root], Kind.DIRECTORY)


def test_new_paths(roots: tuple[Path, Path]) -> None:
    root, outside = roots
    assert resolve_new_path(str(root / "qa" / "n.ipynb"), [root]) == root / "qa" / "n.ipynb"
    with pytest.raises(NotFoundError):
        resolve_new_path(str(outside / "n.ipynb"), [root])
    with pytest.raises(BadPath):
        resolve_new_path(str(root / ".." / "n.ipynb"), [root])
    # A dangling symlink on the way (it would lead out once made) and a file on the way
    # (no directory can be made there) are refused before anything is written.
    (root / "ms" / "gone").symlink_to(outside / "not-yet")
    for raw in ("ms/gone/n.ipynb", "ms/gone/deeper/n.ipynb", "ms/a.txt/n.ipynb", "ms/a.txt/d/n.ipynb"):
        with pytest.raises(NotFoundError):
            resolve_new_path(str(root / raw), [root])
    assert not (outside / "not-yet").exists()


def test_the_servers_own_files_are_not_found(roots: tuple[Path, Path]) -> None:
    """The database, its journals and hidden entries under a root read as missing to clients."""
    root, _ = roots
    (root / "dsa110.sqlite3").write_bytes(b"db")
    (root / "dsa110.sqlite3-wal").write_bytes(b"wal")
    (root / ".casa").mkdir()
    (root / ".casa" / "casasiteconfig.py").write_text("x")
    os.symlink(root / "dsa110.sqlite3", root / "ms" / "db-link")
    for raw in ("dsa110.sqlite3", "dsa110.sqlite3-wal", ".casa/casasiteconfig.py", "ms/db-link"):
        with pytest.raises(NotFoundError):
            resolve_path(str(root / raw), [root])
    with pytest.raises(NotFoundError):
        resolve_path(str(root / ".casa"), [root], Kind.DIRECTORY)
    for raw in (".casa/n.ipynb", ".new/n.ipynb", "qa/x.sqlite3"):
        with pytest.raises(NotFoundError):
            resolve_new_path(str(root / raw), [root])
    # the server's own reads of paths it stored (its caches under `.cache`) are not affected
    assert resolve_stored(str(root / ".casa" / "casasiteconfig.py"), [root]).name == "casasiteconfig.py"


def test_stored_paths_resolve_to_real_files_under_the_roots(roots: tuple[Path, Path]) -> None:
    root, outside = roots
    target = root / "ms" / "a.txt"
    assert resolve_stored(str(target), [root]) == target
    assert resolve_stored("ms/a.txt", [root]) == target  # relative: under the first root
    assert resolve_stored(str(root / "ms" / "inside"), [root]) == target  # a link that stays inside
    for raw in (
        str(outside / "secret"),
        "/etc/passwd",
        str(root / "ms" / "escape"),  # a link leading out
        str(root / "ms" / ".." / ".." / "outside" / "secret"),
        str(root / "ms" / "nope"),
        str(root / "ms"),  # not a file
        "a\x00b",
        "",
    ):
        with pytest.raises(NotFoundError):
            resolve_stored(raw, [root])


def airy(sep_deg: float) -> float:
    """(2 J1(x)/x)^2, x = pi D sin(theta) / lambda, D = 4.7 m, lambda = c / 1.4 GHz."""
    x = math.pi * 4.7 * math.sin(math.radians(sep_deg)) / (299_792_458.0 / 1.4e9)
    return (2 * j1(x) / x) ** 2


def test_calibrator_matching_by_hand() -> None:
    # Pointing RA 180, Dec 42; A 0.5 deg north (5 Jy), B 1.2 deg south (20 Jy), C 2 deg away.
    candidates = [
        Calibrator("A", 180.0, 42.5, 5.0),
        Calibrator("B", 180.0, 40.8, 20.0),
        Calibrator("C", 180.0, 44.0, 50.0),
    ]
    found = match_calibrators(180.0, 42.0, candidates, radius_deg=1.5, top_n=5)
    assert [m.name for m in found] == ["B", "A"]  # C is outside 1.5 deg; B weighs more
    b, a = found
    assert a.sep_deg == pytest.approx(0.5) and b.sep_deg == pytest.approx(1.2)
    assert a.pb_response == pytest.approx(airy(0.5), rel=1e-9)
    assert b.weighted_flux == pytest.approx(20.0 * airy(1.2), rel=1e-9)
    # FWHM 1.029 lambda/D = 2.69 deg: at 1.2 deg the response is a bit above half.
    assert 0.5 < b.pb_response < 0.8 and b.quality == "good"
    assert a.quality == "excellent" and has_calibrator(found)
    assert [quality(p) for p in (0.9, 0.6, 0.35, 0.1)] == ["excellent", "good", "marginal", "poor"]
    assert match_calibrators(180.0, 42.0, candidates, top_n=1)[0].name == "B"
