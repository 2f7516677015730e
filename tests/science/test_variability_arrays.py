"""The array fold equals the scalar running update, bit for bit, on random states and points."""

from __future__ import annotations

import numpy as np

from dsa110.science import newsource, variability_arrays
from dsa110.science.newsource import FirstDetection
from dsa110.science.variability import RunningSums, add_measurement, source_row, sums_from_arrays


def _states(rng: np.random.Generator, n: int) -> list[tuple[RunningSums, list[tuple[float, float, float]]]]:
    out = []
    for i in range(n):
        k = int(rng.integers(0, 6))
        t = 60_000.0 + np.sort(rng.choice(np.arange(0.0, 40.0, 0.5), size=k, replace=False))
        f = rng.normal(0.01, 0.004, k) if i % 3 else rng.normal(-0.001, 0.002, k)
        s = rng.uniform(0.0005, 0.003, k)
        f[rng.random(k) < 0.2] *= 8.0  # some detections and big jumps
        out.append((sums_from_arrays(f, s, t), list(zip(t.tolist(), f.tolist(), s.tolist(), strict=True))))
    return out


def test_array_fold_equals_scalar_fold() -> None:
    rng = np.random.default_rng(3)
    stored = _states(rng, 400)
    n = len(stored)
    f = rng.normal(0.01, 0.01, n)
    s = rng.uniform(0.0005, 0.003, n)
    t = 60_000.0 + rng.choice(np.arange(0.25, 41.0, 0.5), size=n)
    col = {
        name: np.array([source_row(st)[name] for st, _ in stored], dtype=float)
        for name in source_row(RunningSums())
    }
    state = variability_arrays.state_from_columns(col)
    nb = [(i, m, fb, sb) for i, (_, pts) in enumerate(stored) for (m, fb, sb) in pts]
    nb_row = np.array([x[0] for x in nb], dtype=np.int64)
    nb_t, nb_f, nb_s = (np.array([x[j] for x in nb]) for j in (1, 2, 3))
    pair_vs, pair_m = variability_arrays.best_new_pairs(np.arange(n), f, s, t, nb_row, nb_f, nb_s, nb_t)
    first = ("first_detection_mjd", "first_detection_flux_jy", "pre_detection_min_err_jy")
    needs = variability_arrays.first_detection_needs_prior(
        col[first[0]], f, s, t, state["first_mjd"], state["last_mjd"]
    )
    prior_read = np.array(
        [
            min((e for m, _, e in pts if m < t[i]), default=np.nan) if needs[i] else np.nan
            for i, (_, pts) in enumerate(stored)
        ]
    )
    folded = variability_arrays.fold_first_detections(
        col[first[0]],
        col[first[1]],
        col[first[2]],
        f,
        s,
        t,
        state["first_mjd"],
        state["last_mjd"],
        prior_read,
    )
    new = variability_arrays.add_measurements(state, f, s, t, pair_vs, pair_m)
    derived = variability_arrays.metrics(new, folded[1], folded[2])
    got = {**new, **dict(zip(first, folded, strict=True)), **derived}
    assert needs.any() and (pair_m > 0).any()
    for i, (st, pts) in enumerate(stored):
        window = [(fb, sb) for m, fb, sb in pts if abs(m - t[i]) <= 10.0]
        assert needs[i] == newsource.needs_prior_min_err(
            st.first_detection, f[i], s[i], t[i], st.first_mjd, st.last_mjd
        )
        want = source_row(
            add_measurement(st, f[i], s[i], t[i], window, None if np.isnan(prior_read[i]) else prior_read[i])
        )
        for name, value in want.items():
            have = got[name][i]
            if value is None:
                assert np.isnan(have), (i, name)
            else:
                assert have == value, (i, name, have, value)  # the same bits
    assert isinstance(FirstDetection(), FirstDetection)
