"""Variability metrics: hand-computed values, and the running path agreeing with the batch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsa110.science.variability import (
    PAIR_WINDOW_DAYS,
    RunningSums,
    VariabilityInputError,
    add_measurement,
    batch_metrics,
    metrics_from_sums,
    needs_prior_min_err,
    sums_from_arrays,
)


def _fold(flux, err, mjd, order=None):
    """Feed points one at a time as ingest does: each with the stored points within the
    pair window and, when asked for, the smallest stored error before its epoch."""
    idx = list(range(len(flux))) if order is None else list(order)
    state = RunningSums()
    seen: list[int] = []
    for i in idx:
        nb = [(flux[j], err[j]) for j in seen if abs(mjd[j] - mjd[i]) <= PAIR_WINDOW_DAYS]
        prior = None
        if needs_prior_min_err(state, flux[i], err[i], mjd[i]):
            prior = min(err[j] for j in seen if mjd[j] < mjd[i])
        state = add_measurement(state, flux[i], err[i], mjd[i], nb, prior)
        seen.append(i)
    return state


def test_three_points_by_hand():
    # w = 1, 1, 1/4; S_w = 2.25, S_wf = 3.75, S_wf2 = 7.25; weighted mean 5/3.
    # sum w (F - 5/3)^2 = 4/9 + 1/9 + (16/9)/4 = 1  ->  eta = chi2_nu = 1 / (3 - 1) = 0.5.
    # mean 2, sample std 1 -> V = 0.5; population std sqrt(2/3), max deviation 1
    # -> sigma deviation = 1 / sqrt(2/3) = sqrt(1.5).
    # S/N = F / s = 1, 2, 1.5 -> max S/N 2; no point reaches S/N 5, so nothing is detected.
    flux, err, mjd = [1.0, 2.0, 3.0], [1.0, 1.0, 2.0], [0.0, 1.0, 20.0]
    for m in (batch_metrics(flux, err, mjd), metrics_from_sums(_fold(flux, err, mjd))):
        assert m.n_epochs == 3
        assert m.mean_flux_jy == pytest.approx(2.0)
        assert m.eta == pytest.approx(0.5)
        assert m.chi2_nu == pytest.approx(0.5)
        assert m.v == pytest.approx(0.5)
        assert m.sigma_deviation == pytest.approx(math.sqrt(1.5))
        # The only pair within 10 d is (1, 2): |Vs| = 1/sqrt(2) < 4.3, so no significant pair.
        assert m.vs_abs_max == 0.0 and m.m_abs_max == 0.0
        assert (m.min_flux_jy, m.max_flux_jy, m.first_mjd, m.last_mjd) == (1.0, 3.0, 0.0, 20.0)
        assert m.max_snr == 2.0
        assert (m.new_high_sigma, m.new_source) == (None, False)


def test_max_snr_is_the_best_measurement_not_the_mean_one():
    # S/N = 0.010/0.002 = 5, 0.030/0.002 = 15, 0.020/0.004 = 5, -0.004/0.002 = -2 -> 15;
    # the mean flux over the mean error would say 0.014/0.0025 = 5.6.
    flux, err, mjd = [0.010, 0.030, 0.020, -0.004], [0.002, 0.002, 0.004, 0.002], [0.0, 1.0, 2.0, 3.0]
    for order in ([0, 1, 2, 3], [3, 2, 1, 0]):
        assert metrics_from_sums(_fold(flux, err, mjd, order)).max_snr == pytest.approx(15.0)
    assert batch_metrics(flux, err, mjd).max_snr == pytest.approx(15.0)
    assert batch_metrics([-0.003], [0.001], [0.0]).max_snr == pytest.approx(-3.0)  # signed, like F


def test_two_epoch_maximum_takes_the_largest_m_among_significant_pairs():
    # a-b: |Vs| = 0.2/hypot(.01,.01) = 14.14, |m| = 0.4/2.2 = 0.1818
    # a-c: |Vs| = 1.0/hypot(.01,.2) = 4.994, |m| = 2/3   <- largest |m| among |Vs| >= 4.3
    # b-c: |Vs| = 0.8/hypot(.01,.2) = 3.995, not significant
    flux, err, mjd = [1.0, 1.2, 2.0], [0.01, 0.01, 0.2], [0.0, 2.0, 4.0]
    expected_vs = 1.0 / math.hypot(0.01, 0.2)
    for m in (batch_metrics(flux, err, mjd), metrics_from_sums(_fold(flux, err, mjd, order=[2, 0, 1]))):
        assert m.vs_abs_max == pytest.approx(expected_vs)
        assert m.m_abs_max == pytest.approx(2.0 / 3.0)


def test_pairs_further_apart_than_the_window_are_not_formed():
    flux, err, mjd = [1.0, 1.5], [0.05, 0.05], [0.0, PAIR_WINDOW_DAYS + 0.5]
    assert batch_metrics(flux, err, mjd).m_abs_max == 0.0
    m = batch_metrics(flux, err, [0.0, 5.0])
    assert m.vs_abs_max == pytest.approx(0.5 / math.hypot(0.05, 0.05))
    assert m.m_abs_max == pytest.approx(0.4)


def test_single_point_and_empty():
    one = batch_metrics([0.3], [0.01], [60000.0])
    assert (one.n_epochs, one.v, one.eta, one.sigma_deviation, one.vs_abs_max) == (1, 0.0, 0.0, 0.0, 0.0)
    assert metrics_from_sums(_fold([0.3], [0.01], [60000.0])) == one
    empty = batch_metrics([], [], [])
    assert empty.n_epochs == 0 and empty.eta is None


def test_v_is_undefined_for_a_non_positive_mean():
    assert batch_metrics([-1.0, 0.5], [0.1, 0.1], [0.0, 1.0]).v is None


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_running_sums_agree_with_batch_to_1e9_in_any_order(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 400))
    mjd = np.sort(rng.uniform(60000, 60365, n))
    base = rng.uniform(0.01, 2.0)
    snr = rng.uniform(5, 300)
    err = base / snr * rng.uniform(0.7, 1.3, n)
    flux = base * (1 + 0.05 * rng.standard_normal(n)) + err * rng.standard_normal(n)
    batch = batch_metrics(flux, err, mjd)
    running = metrics_from_sums(_fold(flux, err, mjd, order=rng.permutation(n)))
    stored = metrics_from_sums(sums_from_arrays(flux, err, mjd))
    for name in ("mean_flux_jy", "v", "eta", "chi2_nu", "sigma_deviation", "vs_abs_max", "m_abs_max"):
        b = getattr(batch, name)
        assert getattr(running, name) == pytest.approx(b, rel=1e-9), name
        assert getattr(stored, name) == pytest.approx(b, rel=1e-9), name
    # Maxima, minima and the first-detection state are exact under any order.
    for name in ("max_snr", "new_high_sigma", "new_source"):
        assert getattr(running, name) == getattr(batch, name) == getattr(stored, name), name
    assert (batch.m_abs_max or 0.0) > 0  # the random data do contain significant pairs
    assert running.n_epochs == batch.n_epochs == n


@pytest.mark.parametrize(
    ("flux", "err", "mjd"),
    [
        ([1.0, float("nan")], [0.1, 0.1], [0.0, 1.0]),
        ([1.0, 2.0], [0.1, 0.0], [0.0, 1.0]),
        ([1.0, 2.0], [0.1, -0.1], [0.0, 1.0]),
        ([1.0, 2.0], [0.1], [0.0, 1.0]),
        ([1.0, float("inf")], [0.1, 0.1], [0.0, 1.0]),
        (["a", "b"], [0.1, 0.1], [0.0, 1.0]),
        ([[1.0, 2.0]], [[0.1, 0.1]], [[0.0, 1.0]]),
    ],
)
def test_bad_input_is_a_clear_error(flux, err, mjd):
    with pytest.raises(VariabilityInputError):
        batch_metrics(flux, err, mjd)


def test_bad_single_measurement_is_refused():
    with pytest.raises(VariabilityInputError):
        add_measurement(RunningSums(), 1.0, 0.0, 60000.0)


def test_vectorised_pair_maxima_equal_the_per_source_definition() -> None:
    from dsa110.science.variability import batch_metrics, pair_maxima_by_source

    rng = np.random.default_rng(3)
    n_sources = 40
    src = rng.integers(0, n_sources, 3000)
    mjd = rng.uniform(0, 90, src.size)
    flux = rng.uniform(0.5, 1.5, src.size) * np.where(rng.random(src.size) < 0.05, 0.4, 1.0)
    err = rng.uniform(0.01, 0.08, src.size)
    vs_max, m_max = pair_maxima_by_source(src, mjd, flux, err, n_sources + 1)
    for i in range(n_sources):
        sel = src == i
        expected = batch_metrics(flux[sel], err[sel], mjd[sel])
        assert vs_max[i] == pytest.approx(expected.vs_abs_max, rel=1e-12)
        assert m_max[i] == pytest.approx(expected.m_abs_max, rel=1e-12)
    assert vs_max[n_sources] == 0.0 and m_max[n_sources] == 0.0  # no measurements
