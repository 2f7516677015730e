"""Small real radio files written once per test module: an MS, its K/B/G tables, a UVH5 file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from dsa110.demo.radio_files import MsSpec, UvhSpec, write_caltable, write_ms, write_uvh5

START_MJD = 60990.5
FLAGGED_ANTENNA = 5
REFANT = 1


@dataclass(frozen=True)
class RadioFiles:
    root: Path
    ms: Path
    spec: MsSpec
    tables: dict[str, Path]  # "K", "B", "G"
    uvh5: Path
    uvh_spec: UvhSpec


@pytest.fixture(scope="module")
def radio(tmp_path_factory: pytest.TempPathFactory) -> RadioFiles:
    root = tmp_path_factory.mktemp("radio")
    spec = MsSpec(start_mjd=START_MJD, dec_deg=42.0, flagged_antennas=(FLAGGED_ANTENNA,), seed=3)
    ms = write_ms(root / "ms" / "2025-10-30T12:00:00.ms", spec)
    tables = {
        kind: write_caltable(
            root / "ms" / f"2025-10-30T12:00:00_{suffix}",
            ms,
            kind,
            refant=REFANT,
            flagged_antennas=(FLAGGED_ANTENNA,),
        )
        for kind, suffix in (("K", "kcal"), ("B", "bpcal"), ("G", "gpcal"))
    }
    uvh_spec = UvhSpec(start_mjd=START_MJD, dec_deg=42.0, subband=3)
    uvh5 = write_uvh5(root / "incoming" / "2025-10-30T12:00:00_sb03.hdf5", uvh_spec)
    return RadioFiles(root, ms, spec, tables, uvh5, uvh_spec)
