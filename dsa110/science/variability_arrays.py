"""The running update of :mod:`dsa110.science.variability`, for many sources at once.

One image adds at most one measurement per source, so the sources an image touches are
independent: :func:`add_measurements` folds one new point (F, s, t) into each of N stored
states held as columns (numpy arrays, ``NaN`` where the stored value is ``None``), with the
same arithmetic as :func:`dsa110.science.variability.add_measurement` and
:func:`dsa110.science.variability.metrics_from_sums` (same operations in the same order on
IEEE doubles, so the same bits), in a few array operations instead of a Python call per
source:

- sums: N + 1, S_w + w, S_wf + w F, S_wf2 + w F F, S_f + F, S_f2 + F F with w = 1/(s s);
- extremes: min/max flux, first/last MJD, max S/N (``fmin``/``fmax``, so a missing value
  gives way to the new one);
- two-epoch maxima: each new point against its stored partners within ``PAIR_WINDOW_DAYS``
  (|Vs| = |F_a - F_b| / hypot(s_a, s_b), |m| = |2 (F_a - F_b) / (F_a + F_b)|, significant when
  |Vs| >= 4.3 and F_a + F_b > 0); the kept pair is the lexicographic maximum of (|m|, |Vs|)
  over the stored pair and the new significant pairs, which is what the sequential fold
  keeps (a larger |m| wins; an equal |m| keeps the larger |Vs|);
- metrics (closed forms of the sums, variability module docstring): mean = S_f / N,
  eta = chi2_nu = max(S_wf2 - S_wf^2 / S_w, 0) / (N - 1), V = sqrt(max(S_f2 - S_f^2/N, 0) /
  (N - 1)) / mean (``NaN`` when mean <= 0), sigma_deviation = max(|max - mean|, |min - mean|)
  / sqrt(max(S_f2 - S_f^2/N, 0) / N) (0 when that is 0); 0, 0, 0 for N = 1.

The first-detection state (:mod:`dsa110.science.newsource`, its running form) is folded the
same way by :func:`fold_first_detections`; the occasional back-filled detection that needs
the stored minimum error before it gets that from the caller (one indexed read).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from dsa110.science.newsource import DETECTION_SNR, NEW_SOURCE_MIN_SIGMA
from dsa110.science.variability import PAIR_WINDOW_DAYS, VS_SIGNIFICANT

Array = NDArray[np.float64]

SUM_COLUMNS = ("sum_w", "sum_wf", "sum_wf2", "sum_f", "sum_f2")
STATE_COLUMNS = (
    "n_epochs",
    *SUM_COLUMNS,
    "min_flux_jy",
    "max_flux_jy",
    "vs_abs_max",
    "m_abs_max",
    "first_mjd",
    "last_mjd",
    "max_snr",
)


def state_from_columns(columns: dict[str, Any]) -> dict[str, Array]:
    """Stored ``sources`` columns as state arrays; NULL sums and pair maxima read as 0, as
    :func:`dsa110.science.variability.state_of_row` reads them, other NULLs as ``NaN``."""
    state = {name: np.asarray(columns[name], dtype=np.float64) for name in STATE_COLUMNS}
    for name in (*SUM_COLUMNS, "n_epochs", "vs_abs_max", "m_abs_max"):
        state[name] = np.nan_to_num(state[name], nan=0.0)
    return state


def best_new_pairs(
    row: NDArray[np.int64],
    f: Array,
    s: Array,
    t: Array,
    nb_row: NDArray[np.int64],
    nb_f: Array,
    nb_s: Array,
    nb_t: Array,
) -> tuple[Array, Array]:
    """Per new point ``i``: (|Vs|, |m|) of its best significant pair, (0, 0) when none.

    ``nb_*`` are stored points, ``nb_row`` the index of the new point they belong to;
    those farther than ``PAIR_WINDOW_DAYS`` from it are ignored.
    """
    n = f.size
    best_vs, best_m = np.zeros(n), np.zeros(n)
    if nb_row.size == 0:
        return best_vs, best_m
    near = np.abs(nb_t - t[nb_row]) <= PAIR_WINDOW_DAYS
    r, fb, sb = nb_row[near], nb_f[near], nb_s[near]
    fa, sa = f[r], s[r]
    vs = np.abs(fa - fb) / np.hypot(sa, sb)
    total = fa + fb
    keep = (vs >= VS_SIGNIFICANT) & (total > 0)
    r, vs = r[keep], vs[keep]
    m = np.abs(2.0 * (fa[keep] - fb[keep]) / total[keep])
    if r.size == 0:
        return best_vs, best_m
    order = np.lexsort((vs, m, r))  # per row ascending (|m|, |Vs|): the last one is the best
    r, vs, m = r[order], vs[order], m[order]
    last = np.append(np.nonzero(np.diff(r))[0], r.size - 1)
    best_vs[r[last]] = vs[last]
    best_m[r[last]] = m[last]
    return best_vs, best_m


def add_measurements(
    state: dict[str, Array], f: Array, s: Array, t: Array, pair_vs: Array, pair_m: Array
) -> dict[str, Array]:
    """The state columns after one new point per source (``pair_*`` from :func:`best_new_pairs`)."""
    w = 1.0 / (s * s)
    out = {
        "n_epochs": state["n_epochs"] + 1.0,
        "sum_w": state["sum_w"] + w,
        "sum_wf": state["sum_wf"] + w * f,
        "sum_wf2": state["sum_wf2"] + w * f * f,
        "sum_f": state["sum_f"] + f,
        "sum_f2": state["sum_f2"] + f * f,
        "min_flux_jy": np.fmin(state["min_flux_jy"], f),
        "max_flux_jy": np.fmax(state["max_flux_jy"], f),
        "first_mjd": np.fmin(state["first_mjd"], t),
        "last_mjd": np.fmax(state["last_mjd"], t),
        "max_snr": np.fmax(state["max_snr"], f / s),
    }
    cur_vs, cur_m = state["vs_abs_max"], state["m_abs_max"]
    better = pair_m > cur_m
    tie = (pair_m == cur_m) & (cur_m > 0)
    out["m_abs_max"] = np.where(better, pair_m, cur_m)
    out["vs_abs_max"] = np.where(better, pair_vs, np.where(tie, np.maximum(cur_vs, pair_vs), cur_vs))
    return out


def metrics(state: dict[str, Array], first_flux: Array, prior_min_err: Array) -> dict[str, Array]:
    """The metric columns of :func:`dsa110.science.variability.metrics_from_sums`; ``NaN`` for ``None``."""
    n = state["n_epochs"]
    mean = state["sum_f"] / n
    single = n == 1
    with np.errstate(divide="ignore", invalid="ignore"):
        nm1 = np.where(single, 1.0, n - 1.0)
        ss = np.maximum(state["sum_f2"] - state["sum_f"] * state["sum_f"] / n, 0.0)
        eta = np.maximum(state["sum_wf2"] - state["sum_wf"] * state["sum_wf"] / state["sum_w"], 0.0) / nm1
        v = np.where(mean > 0, np.sqrt(ss / nm1) / mean, np.nan)
        std0 = np.sqrt(ss / n)
        spread = np.maximum(np.abs(state["max_flux_jy"] - mean), np.abs(state["min_flux_jy"] - mean))
        sdev = np.where(std0 > 0, spread / std0, 0.0)
        high = first_flux / prior_min_err  # NaN when either is missing
    eta = np.where(single, 0.0, eta)
    return {
        "mean_flux_jy": mean,
        "v": np.where(single, 0.0, v),
        "eta": eta,
        "chi2_nu": eta,
        "sigma_deviation": np.where(single, 0.0, sdev),
        "new_high_sigma": high,
        "new_source": np.nan_to_num(high, nan=-np.inf) > NEW_SOURCE_MIN_SIGMA,
    }


def first_detection_needs_prior(
    first_mjd: Array, f: Array, s: Array, t: Array, stored_first: Array, stored_last: Array
) -> NDArray[np.bool_]:
    """:func:`dsa110.science.newsource.needs_prior_min_err` per point (``NaN`` for ``None``)."""
    detected = f / s >= DETECTION_SNR
    becomes_first = detected & (np.isnan(first_mjd) | (t < first_mjd))
    return becomes_first & (stored_first < t) & (t <= stored_last)  # False where either is NaN


def fold_first_detections(
    first_mjd: Array,
    first_flux: Array,
    prior: Array,
    f: Array,
    s: Array,
    t: Array,
    stored_first: Array,
    stored_last: Array,
    prior_read: Array,
) -> tuple[Array, Array, Array]:
    """:func:`dsa110.science.newsource.fold` per point, as arrays (``NaN`` for ``None``).

    ``prior_read`` is the stored min sigma before t where :func:`first_detection_needs_prior`
    says it is needed. Cases, in the order ``fold`` tests them: a non-detection at or before
    the first detection (or with none yet) lowers the prior minimum; a detection after it
    changes nothing; at its epoch keeps the larger flux; one that becomes first takes the
    read minimum (back-filled between stored epochs), the old minimum (every stored point
    earlier) or none (no stored point earlier).
    """
    detected = f / s >= DETECTION_SNR
    none_yet = np.isnan(first_mjd)
    lowers = ~detected & (none_yet | (t < first_mjd))
    same = detected & (t == first_mjd)
    becomes = detected & (none_yet | (t < first_mjd))
    needs = first_detection_needs_prior(first_mjd, f, s, t, stored_first, stored_last)
    all_earlier = stored_last < t
    new_prior = np.where(needs, prior_read, np.where(all_earlier, prior, np.nan))
    out_mjd = np.where(becomes, t, first_mjd)
    out_flux = np.where(becomes, f, np.where(same, np.fmax(first_flux, f), first_flux))
    out_prior = np.where(becomes, new_prior, np.where(lowers, np.fmin(prior, s), prior))
    return out_mjd, out_flux, out_prior
