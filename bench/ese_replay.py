"""Replay images through the incremental ESE tracker, as the ``ese-detect`` job runs it.

For each image in time order: fold its points into the running statistic
(``dsa110.science.ese_tracker.update``, vectorised over the image's sources), pick the
sources ``due`` a full test, run ``detect_all`` on each of those sources' light curves up
to that image and apply ``transition`` (phases, alerts). CPU is ``time.process_time``
around exactly that work (no simulation, no normalisation, no database).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from dsa110.science.ese import DEFAULT_PARAMS, EseInputError, EseParams
from dsa110.science.ese_edge import detect_all, recovery_check, refit_check
from dsa110.science.ese_tracker import Candidate, RunningState, due, follows, tested, transition, update


@dataclass
class Replay:
    candidates: list[list[Candidate]]
    alerts: list[list[tuple[float, str | None, str, Candidate]]]
    cpu_s: float
    n_points: int
    n_full_tests: int
    failures: dict[int, str] = field(default_factory=dict)


def replay(mjd: np.ndarray, flux: np.ndarray, err: np.ndarray, params: EseParams = DEFAULT_PARAMS) -> Replay:
    n_src, n_img = flux.shape
    state = RunningState.empty(n_src)
    cands: list[list[Candidate]] = [[] for _ in range(n_src)]
    alerts: list[list[tuple[float, str | None, str, Candidate]]] = [[] for _ in range(n_src)]
    failures: dict[int, str] = {}
    present = np.isfinite(flux) & np.isfinite(err)
    cpu = 0.0
    n_tests = 0
    for j in range(n_img):
        start = time.process_time()
        idx = np.flatnonzero(present[:, j])
        update(state, idx, flux[idx, j])
        now = float(mjd[j])
        followed = np.array(
            [
                any(follows(c.phase, c.detection.end_mjd, c.detection.fwhm_days, now) for c in cands[i])
                for i in idx
            ],
            dtype=bool,
        )
        for i in idx[due(state, idx, now, followed)]:
            ok = present[i, : j + 1]
            n_tests += 1
            curve = (mjd[: j + 1][ok], flux[i, : j + 1][ok], err[i, : j + 1][ok])
            try:
                found = detect_all(*curve, params)
            except EseInputError as exc:  # isolate the source, record why, go on
                failures[int(i)] = str(exc)
                found = []
            tested(state, int(i), now, bool(found))
            changed = transition(
                cands[i], found, now, recovery_check(*curve, params), refit_check(*curve, params)
            )
            for cand, old, new in changed:
                alerts[i].append((now, old, new, cand))
        cpu += time.process_time() - start
    return Replay(cands, alerts, cpu, int(present.sum()), n_tests, failures)
