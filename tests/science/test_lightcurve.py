"""Differential-photometry normalisation, checked against arithmetic done by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsa110.science.lightcurve import (
    NO_CORRECTION,
    Correction,
    NormalisationError,
    PhotometryRow,
    ensemble_correction,
    image_corrections,
    normalise,
    normalised_points,
    reference_baselines,
    refine_references,
)


def test_normalise_propagates_the_correction_error():
    # F/C = 2/1.25 = 1.6; sigma = sqrt((0.1/1.25)^2 + (2*0.05/1.25^2)^2) = sqrt(0.0064 + 0.064^2)
    f, s = normalise([2.0], [0.1], [1.25], [0.05])
    assert f[0] == pytest.approx(1.6)
    assert s[0] == pytest.approx(math.sqrt(0.0064 + 0.004096))


def test_ensemble_correction_clips_at_three_mad():
    # median 1.01; |R - C| = .01,.01,.03,0,.49 -> MAD .01 -> sigma .014826; 1.5 is clipped.
    # Remaining 1.0, 1.02, 0.98, 1.01: median 1.005, deviations .005,.015,.025,.005 -> MAD .01.
    c = ensemble_correction([1.0, 1.02, 0.98, 1.01, 1.5])
    assert c.factor == pytest.approx(1.005)
    assert c.sigma == pytest.approx(0.014826)
    assert c.n_references == 4 and c.corrected


def test_too_few_references_give_no_correction():
    assert ensemble_correction([1.1, 0.9]) == NO_CORRECTION
    assert ensemble_correction([1.1, float("nan"), -1.0, 0.9]) == NO_CORRECTION


def test_baselines_and_per_image_factors():
    rows = [
        PhotometryRow(image_pk=i, source_pk=pk, flux_jy=base * scale, err_jy=0.01)
        for i, scale in ((1, 1.1), (2, 0.9), (3, 1.0))
        for pk, base in ((10, 1.0), (11, 2.0), (12, 4.0))
    ]
    rows.append(PhotometryRow(image_pk=4, source_pk=10, flux_jy=1.0, err_jy=0.01))
    baselines = reference_baselines(rows, {10, 11, 12})
    # Each reference's median of (1.1, 0.9, 1.0) x base (and 1.0 extra for source 10).
    assert baselines == {10: pytest.approx(1.0), 11: pytest.approx(2.0), 12: pytest.approx(4.0)}
    corr = image_corrections(rows, baselines)
    assert corr[1].factor == pytest.approx(1.1) and corr[1].sigma == pytest.approx(0.0)
    assert corr[2].factor == pytest.approx(0.9)
    assert corr[4] == NO_CORRECTION  # one reference only
    f, s, ok = normalised_points([1, 2, 4, 99], [2.2, 1.8, 3.0, 5.0], [0.1, 0.1, 0.1, 0.1], corr)
    assert f.tolist() == pytest.approx([2.0, 2.0, 3.0, 5.0])
    assert s.tolist() == pytest.approx([0.1 / 1.1, 0.1 / 0.9, 0.1, 0.1])
    assert ok.tolist() == [True, True, False, False]


def test_first_n_baseline_uses_the_earliest_epochs():
    rows = [PhotometryRow(i, 7, f, 0.1) for i, f in enumerate([1.0, 2.0, 3.0, 100.0, 100.0])]
    mjd = {i: 60000.0 + i for i in range(5)}
    assert reference_baselines(rows, {7}, first_n=3, mjd_of_image=mjd) == {7: 2.0}
    assert reference_baselines(rows, {7}) == {7: 3.0}
    with pytest.raises(NormalisationError):
        reference_baselines(rows, {7}, first_n=3)


def test_a_variable_reference_is_dropped_by_refinement():
    rng = np.random.default_rng(5)
    n_img, refs = 40, list(range(8))
    gains = 1 + 0.03 * rng.standard_normal(n_img)
    rows = []
    for i in range(n_img):
        for pk in refs:
            intrinsic = 1 + 0.3 * math.sin(i / 3) if pk == 0 else 1.0
            rows.append(
                PhotometryRow(i, pk, gains[i] * intrinsic * (1 + 0.002 * rng.standard_normal()), 0.01)
            )
    baselines = reference_baselines(rows, refs)
    kept, corr = refine_references(rows, baselines)
    assert 0 not in kept and len(kept) == 7
    factors = np.array([corr[i].factor for i in range(n_img)])
    # The factors track the shared gains up to one overall scale (baselines are medians).
    assert np.std(factors / gains) < 0.003


@pytest.mark.parametrize(
    "args",
    [
        ([1.0], [0.1], [0.0], [0.0]),
        ([1.0], [0.1], [float("nan")], [0.0]),
        ([1.0, 2.0], [0.1, 0.1, 0.1], [1.0], [0.0]),
    ],
)
def test_bad_input_is_a_clear_error(args):
    with pytest.raises(NormalisationError):
        normalise(*args)


def test_mismatched_point_arrays_are_refused():
    with pytest.raises(NormalisationError):
        normalised_points([1, 2], [1.0], [0.1], {1: Correction(1.0, 0.0, 3)})
