"""New sources: hand-computed cases, and the running state equal to the batch in any order."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dsa110.science.newsource import (
    FirstDetection,
    first_detection_of,
    first_detections_by_source,
    fold,
    is_new_source,
    needs_prior_min_err,
    new_high_sigma,
)


def _fold(flux, err, mjd, order):
    """Fold points in ``order``, answering the back-fill read from the points already folded."""
    state, seen = FirstDetection(), []
    for i in order:
        first = min((mjd[j] for j in seen), default=None)
        last = max((mjd[j] for j in seen), default=None)
        prior = None
        if needs_prior_min_err(state, flux[i], err[i], mjd[i], first, last):
            prior = min(err[j] for j in seen if mjd[j] < mjd[i])
        state = fold(state, flux[i], err[i], mjd[i], first, last, prior)
        seen.append(i)
    return state


def _every_order(flux, err, mjd):
    """The batch state, after checking that every ingest order folds to it."""
    batch = first_detection_of(flux, err, mjd)
    for order in itertools.permutations(range(len(flux))):
        assert _fold(flux, err, mjd, order) == batch, order
    return batch


def test_a_source_that_appears_after_two_sensitive_epochs_is_new():
    # S/N = 0.002/0.001 = 2, 0.003/0.0008 = 3.75, then 0.012/0.002 = 6: first detection at
    # MJD 2 with F_d = 0.012; the earlier errors are 0.001 and 0.0008, the smaller 0.0008;
    # new_high_sigma = 0.012 / 0.0008 = 15 > 5.
    flux, err, mjd = [0.002, 0.003, 0.012], [0.001, 0.0008, 0.002], [0.0, 1.0, 2.0]
    state = _every_order(flux, err, mjd)
    assert state == FirstDetection(2.0, 0.012, 0.0008)
    assert new_high_sigma(state) == pytest.approx(15.0)
    assert is_new_source(state)


def test_a_detection_the_earlier_epochs_could_have_missed_is_not_new():
    # First epoch: 1.0 +- 1.25 (S/N 0.8); second: 6.0 +- 1.0 (S/N 6, a detection).
    # Had it been 6.0 at the first epoch it would have been 6.0 / 1.25 = 4.8 sigma: not
    # enough to say it was absent, so not new.
    state = _every_order([1.0, 6.0], [1.25, 1.0], [0.0, 1.0])
    assert new_high_sigma(state) == pytest.approx(4.8)
    assert not is_new_source(state)


def test_detected_at_its_first_epoch_or_never_is_not_new():
    detected_first = _every_order([0.010, 0.001], [0.001, 0.001], [0.0, 1.0])  # S/N 10 then 1
    assert detected_first == FirstDetection(0.0, 0.010, None)
    assert (new_high_sigma(detected_first), is_new_source(detected_first)) == (None, False)
    never = _every_order([0.001, 0.002, 0.003], [0.001, 0.0007, 0.001], [0.0, 1.0, 2.0])
    # Never detected: no F_d; the state keeps the smallest error of all, 0.0007.
    assert never == FirstDetection(None, None, 0.0007)
    assert (new_high_sigma(never), is_new_source(never)) == (None, False)
    assert first_detection_of([], [], []) == FirstDetection()


def test_only_epochs_before_the_first_detection_count():
    # MJD 0: S/N 1 (err 0.002); MJD 1: S/N 10 (first detection, 0.02); MJD 2: S/N 0.5 with a
    # tiny error 0.0001. The later epoch must not count: 0.02 / 0.002 = 10, not 200.
    state = _every_order([0.002, 0.02, 0.00005], [0.002, 0.002, 0.0001], [0.0, 1.0, 2.0])
    assert new_high_sigma(state) == pytest.approx(10.0)


def test_detections_sharing_the_first_epoch_keep_the_brighter():
    # Two images at MJD 1 both detect it (0.010, 0.012); MJD 0 had err 0.001 at S/N 0.
    state = _every_order([0.0, 0.010, 0.012], [0.001, 0.002, 0.002], [0.0, 1.0, 1.0])
    assert state == FirstDetection(1.0, 0.012, 0.001)
    assert new_high_sigma(state) == pytest.approx(12.0)


def test_a_back_filled_detection_needs_the_stored_minimum_and_refuses_to_guess():
    # Stored: MJD 0 (err 0.001) and MJD 2 (err 0.0005), both undetected. A detection at
    # MJD 1 lies between them: only MJD 0 is earlier, which the running state alone
    # (min over both, 0.0005) cannot tell.
    state = _fold([0.0, 0.0], [0.001, 0.0005], [0.0, 2.0], [0, 1])
    assert needs_prior_min_err(state, 0.02, 0.002, 1.0, 0.0, 2.0)
    with pytest.raises(ValueError):
        fold(state, 0.02, 0.002, 1.0, 0.0, 2.0)
    assert fold(state, 0.02, 0.002, 1.0, 0.0, 2.0, 0.001) == FirstDetection(1.0, 0.02, 0.001)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_running_state_equals_the_batch_in_random_orders(seed):
    rng = np.random.default_rng(seed)
    n = 60
    mjd = np.round(rng.uniform(0, 30, n), 1)  # rounded: some points share an epoch
    err = rng.uniform(0.5, 1.5, n)
    # Faint for the first half of the month, then bright: a new source, found in any order.
    flux = np.where(mjd < 15, 1.0, 12.0) + err * rng.standard_normal(n)
    batch = first_detection_of(flux, err, mjd)
    assert is_new_source(batch)
    for _ in range(20):
        assert _fold(flux, err, mjd, rng.permutation(n)) == batch


def test_vectorised_equals_per_source():
    rng = np.random.default_rng(7)
    src = rng.integers(0, 30, 2000)
    mjd = np.round(rng.uniform(0, 60, src.size))
    err = rng.uniform(0.5, 1.5, src.size)
    flux = rng.uniform(0, 8, src.size) * (1 + (mjd > 30) * src % 3)
    first, first_flux, prior = first_detections_by_source(src, mjd, flux, err, 31)
    for i in range(31):
        sel = src == i
        expected = first_detection_of(flux[sel], err[sel], mjd[sel])
        got = FirstDetection(*(None if np.isnan(a[i]) else float(a[i]) for a in (first, first_flux, prior)))
        assert got == expected, i
    assert np.isnan(first[30]) and np.isnan(prior[30])  # source 30 has no measurement
