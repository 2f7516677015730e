"""The demo's simulated raw visibilities: files a UVH5 reader takes as DSA-110's, quietly."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from pyuvdata import UVData

from dsa110.demo.raw import PointSource, RawSpec, simulate_group

SPEC = RawSpec(start_mjd=60992.5, dec_deg=42.0, n_chan=1, n_times=1, n_antennas=4, seed=3)


def test_subband_files_declare_linear_feeds_x_east(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pyuvdata warns when feeds and mount are not declared
        files = simulate_group(tmp_path, "g", SPEC, [PointSource(114.6, 42.0, 1.0)])
    uv = UVData.from_file(str(files[0]), file_type="uvh5")
    assert uv.telescope.feed_array is not None and uv.telescope.feed_angle is not None
    assert uv.telescope.feed_array.tolist() == [["x", "y"]] * 4
    np.testing.assert_allclose(uv.telescope.feed_angle, [[np.pi / 2, 0.0]] * 4)  # x: east
    assert uv.telescope.get_x_orientation_from_feeds() == "east"


def test_a_group_written_again_replaces_its_files_without_printing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = simulate_group(tmp_path, "g", SPEC, [PointSource(114.6, 42.0, 1.0)])
    faint = _peak_cross_amplitude(first[0])
    again = simulate_group(tmp_path, "g", SPEC, [PointSource(114.6, 42.0, 2.0)])
    assert again == first
    assert capsys.readouterr().out == ""
    assert _peak_cross_amplitude(again[0]) / faint == pytest.approx(2.0, rel=0.15)  # the new sky


def _peak_cross_amplitude(path: Path) -> float:
    uv = UVData.from_file(str(path), file_type="uvh5")
    return float(np.abs(uv.data_array[uv.ant_1_array != uv.ant_2_array]).max())
