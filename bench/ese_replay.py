"""Replay images through the incremental ESE tracker, as the ``ese-detect`` job runs it.

For each image in time order: fold its points into the running statistic
(``dsa110.science.ese_tracker.update``, vectorised over the image's sources), pick the
sources ``due`` a full test, run ``detect_all`` on each of those sources' light curves up
to that image with the job's parameters (``ese_tracker.LIVE_PARAMS``), keep its detections
and refits that persisted (the same event on the curve ``ese_tracker.PERSIST_DAYS``
earlier, ``ese_tracker.Earlier``, whose search is the source's last look's when that
look's curve is the earlier curve: ``ese_tracker.LookMemo``, kept per source as the job
keeps it), rate them by the live null table
(``ese_tracker.live_rated``, ``live_refit``) and apply ``transition``
(phases, alerts). CPU is ``time.process_time`` around exactly that work (no simulation, no
normalisation, no database).

``peak`` records, per source and :class:`Look` (what a candidate's rating can depend on:
kind, ``red_rms``, depth, width and the three significances), the highest score any of its
candidates carried at any look (absent when none): the statistic the live null tables are
made of (``bench/ese_null.py --live``, which groups the looks into the tables' strata), kept
whole so that strata can be re-tabulated from kept replays without replaying.
``min_fap`` is the lowest live false-alarm probability any
of its candidates carried (1 when none): "was this source ever alerted at a cap of p".

Sources are independent (per-source state, per-source candidates), so
:func:`replay_parallel` splits them into blocks replayed in worker processes and joins
the outcome in source order; the result is the same as :func:`replay` on all of them.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from bench.ese_sim import SimSource
from dsa110.science.ese import EseDetection, EseInputError, EseParams
from dsa110.science.ese_far import Table, live_key, lookup
from dsa110.science.ese_live_null import LIVE_NULL_TABLES
from dsa110.science.ese_tracker import (
    LIVE_PARAMS,
    Candidate,
    FullTest,
    LookMemo,
    RunningState,
    due,
    follows,
    full_test,
    look,
    tested,
    update,
)

KINDS = ("dip", "ongoing", "egress")


class Look(NamedTuple):
    """What a candidate carried at a look, besides its score (``EseDetection`` fields)."""

    kind: str
    red_rms: float
    depth: float
    fwhm_days: float
    white_sigma: float
    red_sigma: float
    cond_sigma: float

    @classmethod
    def of(cls, d: EseDetection) -> Look:
        return cls(d.kind, d.red_rms, d.depth, d.fwhm_days, d.white_sigma, d.red_sigma, d.cond_sigma)


Peak = dict[Look, float]
"""Per source: the highest score per :class:`Look` its candidates carried."""


def lowest_live_fap(peak: Peak, tables: Mapping[str, Table] | None = None) -> float:
    """The lowest live false-alarm probability a source-year's candidates carried: per look
    key the FAP of its highest score (the lookup is decreasing in score), the lowest over
    them; rated by ``tables`` (``ese_far.LIVE_NULL_TABLES`` when None: the current table)."""
    tables = LIVE_NULL_TABLES if tables is None else tables
    return min(
        (lookup(tables[live_key(k.kind, k.red_rms, k.depth)], s) for k, s in peak.items() if s > 0),
        default=1.0,
    )


BLOCK = 50  # sources per worker task: small enough to balance two workers


@dataclass
class Replay:
    candidates: list[list[Candidate]]
    alerts: list[list[tuple[float, str | None, str, Candidate]]]
    cpu_s: float
    n_points: int
    n_full_tests: int
    failures: dict[int, str] = field(default_factory=dict)
    peak: list[Peak] = field(default_factory=list)
    min_fap: list[float] = field(default_factory=list)


@dataclass
class ConfuserOutcome:
    """One replayed confuser of the injection bench (``bench/ese_injection.py --confusers``):
    its class and injection, the end of its data, its final (not rejected) candidates and
    whether it was ever alerted. Here, not in the bench, so that kept replays unpickle
    whichever module runs."""

    source: SimSource
    t_end: float
    final: list[Candidate]
    alerted: bool


def replay(mjd: np.ndarray, flux: np.ndarray, err: np.ndarray, params: EseParams = LIVE_PARAMS) -> Replay:
    n_src, n_img = flux.shape
    state = RunningState.empty(n_src)
    cands: list[list[Candidate]] = [[] for _ in range(n_src)]
    alerts: list[list[tuple[float, str | None, str, Candidate]]] = [[] for _ in range(n_src)]
    peak: list[Peak] = [{} for _ in range(n_src)]
    min_fap = [1.0] * n_src
    memos: list[LookMemo | None] = [None] * n_src  # each source's last look, as the job keeps it
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
                test = full_test(*curve, params)
            except EseInputError as exc:  # isolate the source, record why, go on
                failures[int(i)] = str(exc)
                test = FullTest([], False)
            found = test.found
            tested(state, int(i), now, bool(found), test.ingress_pending, test.ingress_unsettled)
            changed = look(cands[i], found, *curve, now, params, previous=memos[i])
            memos[i] = test.memo
            for cand, old, new in changed:
                alerts[i].append((now, old, new, cand))
            for c in cands[i]:  # what each candidate carries after this look
                if c.phase != "rejected":
                    d = c.detection
                    key = Look.of(d)
                    peak[i][key] = max(peak[i].get(key, 0.0), d.score)
                    min_fap[i] = min(min_fap[i], d.false_alarm_probability or 1.0)
        cpu += time.process_time() - start
    return Replay(cands, alerts, cpu, int(present.sum()), n_tests, failures, peak, min_fap)


def _block(args: tuple[np.ndarray, np.ndarray, np.ndarray, EseParams]) -> Replay:
    return replay(*args)


def replay_parallel(
    mjd: np.ndarray, flux: np.ndarray, err: np.ndarray, params: EseParams = LIVE_PARAMS, workers: int = 2
) -> Replay:
    """:func:`replay` over blocks of ``BLOCK`` sources in ``workers`` processes (``cpu_s``
    is the sum of the workers' CPU)."""
    starts = range(0, flux.shape[0], BLOCK)
    tasks = [(mjd, flux[s : s + BLOCK], err[s : s + BLOCK], params) for s in starts]
    if workers <= 1:
        parts = [_block(t) for t in tasks]
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_block, tasks, chunksize=1)
    out = Replay([], [], 0.0, 0, 0)
    for s, part in zip(starts, parts, strict=True):
        out.candidates += part.candidates
        out.alerts += part.alerts
        out.peak += part.peak
        out.min_fap += part.min_fap
        out.cpu_s += part.cpu_s
        out.n_points += part.n_points
        out.n_full_tests += part.n_full_tests
        out.failures.update({s + i: why for i, why in part.failures.items()})
    return out
