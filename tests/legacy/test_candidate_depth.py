"""An imported legacy candidate's depth, computed by hand (``dsa110.legacy.candidates``)."""

from __future__ import annotations

import pytest

from dsa110.legacy.candidates import legacy_depth


@pytest.mark.parametrize(
    ("low", "baseline", "depth"),
    [
        (0.07, 0.1, 0.3),  # 1 - 0.07 / 0.1
        (0.1, 0.1, 0.0),  # never below its baseline
        (0.12, 0.1, 0.0),  # its lowest point above the baseline: no dip, not a negative one
        (0.0, 0.1, 1.0),
        (-0.03, 0.1, 1.0),  # a faint source's noise below zero is a 100 % dip, not 130 %
        (0.05, 0.0, 0.0),  # no baseline to compare with
        (0.05, -0.02, 0.0),
    ],
)
def test_a_legacy_candidates_depth_is_its_dip_below_the_baseline_within_0_and_1(low, baseline, depth):
    assert legacy_depth(low, baseline) == pytest.approx(depth)
