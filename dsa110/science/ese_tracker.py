"""Keeping up: a running statistic that decides when a source needs the full ESE test, and
the candidate phases (``ongoing`` -> ``confirmed`` | ``rejected``).

Running statistic (O(1) per measurement, vectorised over sources): a one-sided CUSUM
(Page 1954) of drops below an exponentially weighted baseline. For the normalised flux y:

    z = (m - y) / s,   C <- max(0, C + z - K)

with m and s**2 an exponentially weighted mean and variance of y (weight
alpha = max(1/n, ``EWMA_MIN_WEIGHT``), Welford-style, from residuals clipped at 4 s;
updated by every point until C reaches ``CUSUM_H``, then frozen, so a dip does not drag its
own baseline down). Past the warm-up (n > 5) a point more than 4 s *above* m moves m (by its
clipped residual) but not s (ese-drw-3.15): a rise, a flare or a weak lens's bright shoulder
before its ingress, no longer widens the scale the drop after it is measured by (lens seed
31 of the injection bench: a 66 %-deep 71-d weak lens at SNR 57 whose shoulder, at 3 x the
baseline, had grown s from 0.04 to 0.10; C stayed under 6 through the ingress, the last test
was 36 d before the end of the data, and every test of the last 30 d would have found the
ingress). Noise rarely goes there (a Gaussian's 4 s tail: 3e-5 of points), so the trigger
rate on steady curves is as before: 200 simulated curves of 3,000 points, triggers per
curve, white 1 %: 0 -> 0; DRW 3 % (tau 30 d) + 1 % white: 12.0 -> 12.06; DRW 5 % (200 d):
13.56 -> 13.57; lognormal 10 % and 30 %: 0 -> 0.04, 0 -> 0; flares: 0.01 -> 0.04. (The
semivariance, s from the points below m only, tried first: 13.65, 14.7, 0.04, 0, 0.28, and
more on scintillating sources in a reviewer's runs.) The cost: after a large permanent rise
(a new level D > 4 s above) m climbs by a clipped 4 s alpha per point with s frozen, about
12.5 (D / s - 4) points to catch up (3.14, whose s grew with the rise: 10 s 245 -> 244,
30 s 348 -> 471, 100 s 496 -> 1349 points in a reviewer's simulation); meanwhile a dip at
the new level triggers the CUSUM only when deeper than the lag, and the refresh and the
growth rule below still test the source. C >= ``CUSUM_H``
means a run of low points a dip would make (K = 1: each point must be more than one
scatter below the baseline to add; an ESE of depth d adds about d / s - 1 per epoch).
The CUSUM is only a trigger: it decides which sources the full test looks at, never what
is a candidate.

When the full test runs for a source (``due``; every wait below is counted in transits of
the source, sidereal days, as the telescope sees it: :func:`transits`, ese-drw-3.10): its
CUSUM triggered and the back-off since its last test has passed (3 d, doubling while tests
find nothing up to ``MAX_BACKOFF_DAYS``, reset when C returns to 0 by itself); a triggered
test that finds nothing restarts C at 0 (the alarm was looked at) and the baseline updates
again; one whose search found something looks again ``PERSIST_DAYS`` later (ese-drw-3.6,
:func:`tested`, kept in ``recheck_at`` since 3.9: the look that can see the event persist;
the back-off had reached 24-60 d, and an ingress starting 10-15 d before the end of the data
was tested once, too early, and never again. The 12-d cap cost the null nothing measurable:
10.24 full tests per steady source-year either way, 250 source-years at seed 99001); one
whose best one-sided trial at the end of the data was refused for too little ingress past
half depth (or refused as a fade while the next trial was refused so: ese-drw-3.13) looks
again ``PENDING_DAYS`` later (:func:`ingress_pending`, ese-drw-3.12: the ingress is still
coming in, and the back-off would put the next look 6-12 d later). A
fruitless triggered test also *watches* the source (``watch_until``): it is due again every
``MAX_BACKOFF_DAYS`` for ``WATCH_DAYS`` (ese-drw-3.7). The alarm is usually an ingress, and
what makes a dip testable is its recovery, which comes later; but the restarted CUSUM's
baseline follows the dip down, so the recovery does not fire it, and the next look was the
60-d refresh (seed 41: a 50 %-deep 36-d dip, tested three times during its ingress,
recovered 30 d before the end of the data and was never tested again; the whole year's curve
scores it 2.07). (Until ese-drw-3.2 the baseline updated only while C = 0, i.e. after the
points that did not push C up, the high ones: a biased baseline that drifted up, after which
C grew for good, the back-off reached 60 d and dips late in the data went untested: 9 of 103
live misses on seed 21.) Or it has a followed candidate (``follows``: ``ongoing``, or
``confirmed`` within one FWHM + 60 d of its end) and ``OPEN_GAP_DAYS`` passed (follow the
event as points arrive); or ``REFRESH_DAYS`` of data or ``GROWTH`` times the points
accumulated since its last test (slow events a CUSUM on the last baseline cannot see, and
the edge tests that need new data). The full test runs on the source's whole normalised
light curve and its outcome replaces the previous one (what it reuses: the running state, so
most sources are never re-tested, and the previous candidates, which it updates in place).

Phases (``transition``): a one-sided detection at the end of the data is ``ongoing``; a
two-sided one (recovery seen) or a start-cut one is ``confirmed``. An ``ongoing`` candidate
becomes ``confirmed`` when a two-sided detection overlaps it, stays ``ongoing`` while an
end-edge detection overlaps it (window updated), and becomes ``rejected`` when neither
has matched by ``end_mjd + REJECT_AFTER_FWHM * FWHM + 10 d`` (a recovering lens dip is
two-sided by then: the flux came back without a lens-like dip, red noise or a confuser),
as soon as the data past its minimum show no recovery (``recovered``: from t0 + W/2 on, the
flux stayed at the dip's level, which a lens's does not: a fade or a step; ese-drw-3.2;
not, at the job's live looks, while the look's own search, persisted or not, still finds
an ingress over it: :func:`still_coming_in`, ese-drw-3.13), or when it has been ongoing for more than
``MAX_ONGOING_DAYS`` (a step or a fade). A
``confirmed`` candidate becomes ``rejected`` when a later full test (on more data) finds no
event overlapping it and its own dip, re-tested at its (t0, W), no longer passes (``refit``,
ese-drw-3.3: support re-measured, not re-searched): each test looks at the whole curve
again, and a dip found on part of a red-noise curve that the longer curve explains by
red noise must not stay confirmed (the multiple looks would otherwise add up: the
throughput bench's steady sources kept 12 such "confirmed" dips in 2000 source-years).
The full test reports one two-sided dip per source; a second, weaker event on the same
source is kept by its refit while it still passes on its own.

Persistence (ese-drw-3.5): a look's detections and refits count only when the same event
was there on the curve as it was ``PERSIST_DAYS`` earlier (``Earlier``: that curve's own
search, a detection of the same kind overlapping it; else its own dip re-tested there at
its (t0, W) by ``ese_edge.refit``: a dip that search ranked below another trial, or an
ingress whose one-sided tests the shorter curve cannot pass yet),
and they carry the lesser of the two scores (:func:`persisted`, :func:`live_refit`). So a
candidate is created, moved or kept only by an event seen at two looks ``PERSIST_DAYS``
apart, the later one with more data. Why: the live null's maxima (3.4, 3000 steady
source-years replayed at seeds 90001+, 22 with a candidate) were dominated by one-look spikes of a
candidate's score (a dip at 1.4-1.6 for weeks read 2.6-3.7 at one look, and a refit 2.8
between 1.6s), which the maximum over ~10 looks a year collects; a real dip persists and
deepens. Cost: detections wait up to ``PERSIST_DAYS`` longer (the ongoing-alert target is
30 d; 3.4 alerted at a median 2.8-6 d), and a look that finds something searches twice.
The earlier curve is cut from the current one, not remembered from an earlier look, so a
look's outcome does not depend on when the previous one ran. Its search is remembered
(:class:`LookMemo`, ese-drw-3.17): each look keeps its curve's fingerprint and what its
search found, and the next look's earlier search reuses them when the earlier curve is
exactly that curve (the follow-up look asked for ``PERSIST_DAYS`` after one that found
something usually is: 488 of the 528 earlier searches of 60 sources of the injection mix,
seed 21). Same inputs, same code, same detections: the outcome is the one the search
would give, and the persistence look's second ``detect_all`` is the cost saved: replayed
with and without it, the same candidates, histories and peaks, and 32 % less CPU on 80
sources of that mix (97.6 -> 66.5 s), 7.5 % on 300 of the throughput bench's survey mix
(48.3 -> 44.7 s); the same outcome on the injection bench's lens seed 31 and dip seed 41
targets (``--keep`` replays compared). On the throughput bench's 1,000 sources, run twice
each way beside another process, 0.505 and 0.494 (3.16) -> 0.451 and 0.435 ms per
source-image (``bench/ese_throughput.py``; 11.19 full tests per source-year each).

Hysteresis (ese-drw-3.6): persistence works the other way too. A candidate is rejected
for losing its support (a confirmed dip whose refit no longer passes, an ongoing dip whose
flux shows no recovery) only when the earlier curve says so as well (:func:`live_refit`,
:func:`live_recovered`); where the two looks disagree the candidate is kept as it was.
Deadlines (``REJECT_AFTER_FWHM``, ``MAX_ONGOING_DAYS``) still reject at once. Why: a dip
whose recovery is still coming in scores near the threshold, and one look below it
rejected it for good (seed 31, live: 3 two-sided dips confirmed at score 1.5-1.7 and
rejected at the next look, which the whole year's curve scores 1.35-6.4). Rejected
candidates stay followed like confirmed ones (:func:`follows`), so an event rejected early
is found again when its recovery completes.

Calibration (``live``): the tracker looks at a source 9-16 times a year, so its candidates
are rated by the live null table (``dsa110.science.ese_far.live_false_alarm_probability``:
steady source-years replayed through this tracker with ``LIVE_PARAMS``, the highest score
any candidate carried at any look, persisted scores since 3.5), not the one-look table the
detector attaches. The job and the benches' replay rate every detection and every refit with
:func:`live_rated` and :func:`live_refit` (persistence included) before ``transition``.
A candidate keeps the lowest probability it has carried (:func:`carried`, ese-drw-3.8: the
table counts a steady source-year's most extreme look, so the latest look alone under-rates
an event whose score sagged as data arrived); a new candidate over the window of a rejected
one keeps the rejected one's lowest (ese-drw-3.9: the same event, found again).
``LIVE_PARAMS`` (the job's detector parameters), ``PERSIST_DAYS`` and the live table go
together: change one, regenerate the table (``bench/ese_null.py --live``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Final, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dsa110.science.ese import DEFAULT_PARAMS, DETECTOR_VERSION, EseDetection, EseInputError, EseParams
from dsa110.science.ese_edge import detect_all, recovery_check, refit_check
from dsa110.science.ese_far import with_live_false_alarm_probability

_Days = TypeVar("_Days", float, NDArray[np.float64])

CUSUM_K = 1.0
CUSUM_H = 8.0
EWMA_MIN_WEIGHT = 1.0 / 50.0
CLIP = 4.0
TRIGGER_GAP_DAYS = 3.0
OPEN_GAP_DAYS = 5.0
PERSIST_DAYS = 5.0
PENDING_DAYS = 2.0  # != PERSIST_DAYS: ``tested`` tells a pending look's wait by its length
CORE_PENDING = ("core_points", "core_days")
"""The one-sided tests that refuse an ingress for having too little of it past half depth
yet (``ese_edge``: ``edge_min_core`` points spanning ``edge_min_core_days``): what more
data can change within days (:func:`ingress_pending`)."""
UNSETTLED = ("fade", "flat_bottom", "flare", "step")
"""The one-sided tests that refuse a young strong lens's floor until more of it is in
(:func:`ingress_unsettled`). ``flare`` since ese-drw-3.17: the Gaussian's flare test
(ese-drw-3.16) refused a 74-d lens ingress's floor 26 d before the end of the data (lens seed
31 of the injection bench, source 327) and it was never looked at again; looked at once
more, it is an ongoing dip from 6 d later (score 2.4). ``step`` since ese-drw-3.21: a 97 %-deep
22-d lens ingress whose core had just come in was refused as a step 6 d before the end of the
data (lens seed 51, source 372: three pending looks, then the step) and never looked at
again; looked at once more, 5 d later, it is an ongoing candidate at live FAP 1.5e-5. A few
days of floor after a fast ingress are what a step makes too, until the floor's curvature
shows. The look is one more per pending ingress, as for the others (:func:`tested`), so a
step that stays low is not looked at every few days for as long as it lasts (its later
trials have core enough not to be pending again)."""
REFRESH_DAYS = 60.0
MAX_BACKOFF_DAYS = 12.0
WATCH_DAYS = 60.0  # the recovery of dips up to ~80 d wide; wider ones wait for the refresh
FOLLOW_CONFIRMED_DAYS = 60.0
GROWTH = 1.5
MIN_POINTS = 20
MAX_ONGOING_DAYS = 270.0
REJECT_AFTER_FWHM = 0.75
SIDEREAL_DAY = 0.99726957
"""Solar days per sidereal day: a transit instrument sees a source once a sidereal day."""
SCHEDULE_SLACK_DAYS = 0.05
"""A wait is met this much early (72 min): the images of one transit are minutes apart."""
PHASES = ("ongoing", "confirmed", "rejected")
LIVE_PARAMS: Final[EseParams] = replace(DEFAULT_PARAMS, max_false_alarm=1.0)
"""The job's detector parameters: the detector's defaults (score floor 1) without its
one-look cap (they decide which candidates exist, hence how often a source is followed).
The live null table is calibrated with exactly these. Why no one-look cap (ese-drw-3.8):
the one-look table is one for all dips, and its 1e-3 sits at score ~1.36, where the
red-noise wanders of 1-4.5 % rms put it; the job rates its candidates by the live table,
whose other strata (quiet, strongly red, deep) no steady source-year reaches at score 1,
and the cap refused their dips at 1.0-1.36 (seed 41: a 40 %-deep 53-d dip on an 8 % red
curve, 1.32 at every look). The candidates the cap kept out carry their live
false-alarm probability like any other, so a user's ``maxFalseAlarm`` still decides."""


@dataclass
class RunningState:
    """Per-source running statistic, one array element per source (``watch_until``: the
    MJD until which a fruitless alarm keeps the source due every ``MAX_BACKOFF_DAYS``,
    -inf when not watched; ``recheck_at``: the MJD from which the look a test asked for is due
    (persistence, or an ingress still coming in: :func:`tested`), +inf when none)."""

    n: NDArray[np.int64]
    mean: NDArray[np.float64]
    var: NDArray[np.float64]
    cusum: NDArray[np.float64]
    last_test_mjd: NDArray[np.float64]
    last_test_n: NDArray[np.int64]
    backoff: NDArray[np.float64]
    watch_until: NDArray[np.float64]
    recheck_at: NDArray[np.float64]

    @classmethod
    def empty(cls, size: int) -> RunningState:
        return cls(
            n=np.zeros(size, dtype=np.int64),
            mean=np.zeros(size),
            var=np.zeros(size),
            cusum=np.zeros(size),
            last_test_mjd=np.full(size, -np.inf),
            last_test_n=np.zeros(size, dtype=np.int64),
            backoff=np.full(size, TRIGGER_GAP_DAYS),
            watch_until=np.full(size, -np.inf),
            recheck_at=np.full(size, np.inf),
        )


def update(state: RunningState, idx: NDArray[np.int64], y: NDArray[np.float64]) -> None:
    """Fold one new point per source ``idx`` (distinct) into the running state, in place."""
    n = state.n[idx] + 1
    mean, var, cusum = state.mean[idx], state.var[idx], state.cusum[idx]
    sd = np.sqrt(var)
    warm = n > 5
    z = np.where(warm & (sd > 0), (mean - y) / np.where(sd > 0, sd, 1.0), 0.0)
    cusum = np.where(warm, np.maximum(0.0, cusum + z - CUSUM_K), 0.0)
    calm = cusum < CUSUM_H
    alpha = np.maximum(1.0 / n, EWMA_MIN_WEIGHT)
    above = warm & (y - mean > CLIP * sd)
    r = y - mean
    r = np.where(warm, np.clip(r, -CLIP * sd, CLIP * sd), r)
    new_mean = mean + alpha * r
    # A point more than CLIP scales above the baseline (a flare, a weak lens's bright
    # shoulder) moves the baseline, clipped, but not the scale: the drop after it must be
    # measured by the scale of the noise, not of the rise.
    new_var = np.where(above, var, (1.0 - alpha) * (var + alpha * r * r))
    state.mean[idx] = np.where(calm, new_mean, mean)
    state.var[idx] = np.where(calm, new_var, var)
    state.n[idx] = n
    back = (cusum == 0.0) & (state.cusum[idx] > 0.0)  # returned to 0 by itself
    state.backoff[idx] = np.where(back, TRIGGER_GAP_DAYS, state.backoff[idx])
    state.cusum[idx] = cusum


def transits(days: _Days) -> _Days:
    """A wait of ``days`` as the schedule counts it: that many transits of the source
    (sidereal days), less ``SCHEDULE_SLACK_DAYS`` (ese-drw-3.10).

    Why: a transit telescope sees a source 3.9 min earlier each solar day, so the image N
    transits after a look is N x 0.99727 d later; waits counted in solar days were met one
    transit late (at one image a transit, the persistence look asked for 5 d later ran 6
    transits later, and an ingress found 5 transits before the end of the data was never
    looked at again: seed 21 of the injection bench at a daily cadence, a 20 %-deep dip at
    SNR 166 found on day 358, scored 2.43 by the whole year's curve on day 363)."""
    return days * SIDEREAL_DAY - SCHEDULE_SLACK_DAYS


def due(
    state: RunningState, idx: NDArray[np.int64], now_mjd: float, followed: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Which of the sources ``idx`` need the full test at ``now_mjd`` (module docstring;
    every wait counted in transits, :func:`transits`)."""
    since = now_mjd - state.last_test_mjd[idx]
    n = state.n[idx]
    triggered = (state.cusum[idx] >= CUSUM_H) & (since >= transits(state.backoff[idx]))
    following = followed & (since >= transits(OPEN_GAP_DAYS))
    watching = (now_mjd <= state.watch_until[idx]) & (since >= transits(MAX_BACKOFF_DAYS))
    rechecking = now_mjd >= state.recheck_at[idx]  # already counted in transits (:func:`tested`)
    refresh = (since >= transits(REFRESH_DAYS)) | (n >= GROWTH * state.last_test_n[idx])
    return np.asarray(
        (n >= MIN_POINTS) & (triggered | following | watching | rechecking | refresh), dtype=np.bool_
    )


def follows(phase: str | None, end_mjd: float, fwhm_days: float, now_mjd: float) -> bool:
    """Is a candidate followed (re-tested every ``OPEN_GAP_DAYS``)? ``ongoing`` ones always;
    ``confirmed`` and ``rejected`` ones until one FWHM + ``FOLLOW_CONFIRMED_DAYS`` past their
    window: the fit and its false-alarm probability firm up as the recovery and the
    baseline after it come in (a candidate confirmed early kept its first, weaker fit until
    the 60-d refresh), and a dip rejected while its recovery was incomplete is found again
    when it completes (ese-drw-3.6: otherwise the next look was the 60-d refresh; seed 31,
    3 of 14 live misses were two-sided dips rejected 10-60 d before the end of the data that
    the whole year's curve scores 1.6-6.4)."""
    return phase == "ongoing" or (
        phase in ("confirmed", "rejected") and now_mjd <= end_mjd + fwhm_days + FOLLOW_CONFIRMED_DAYS
    )


def curve_fingerprint(mjd: ArrayLike, flux: ArrayLike, err: ArrayLike, params: EseParams) -> str:
    """A digest of what ``detect_all`` reads: the three arrays as float64 (values, order,
    lengths), the parameters, and the code: the detector version (the project's rule: a
    change of the detector's code or tables bumps it) and numpy's (whose float paths the
    last bits depend on). A memo from other code is not reused. Another machine with the
    same versions may differ in the last bits (SIMD paths: ~1e-11 in the significances),
    which a memo carries for one look at most."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{DETECTOR_VERSION}|numpy {np.__version__}|{params!r}".encode())
    for values in (mjd, flux, err):
        array = np.ascontiguousarray(values, dtype=np.float64)
        digest.update(array.size.to_bytes(8, "little"))
        digest.update(array.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class LookMemo:
    """What one look's search found (``detect_all``'s detections) on the curve with this
    fingerprint (:func:`curve_fingerprint`): the next look's earlier search when its
    earlier curve is that curve (module docstring, "Persistence"). The job keeps it in
    ``ese_source_state.last_look`` (:meth:`to_json`, :meth:`from_json`)."""

    fingerprint: str
    found: tuple[EseDetection, ...]

    def to_json(self) -> str | None:
        """JSON with Python's float repr (exact round trip; NaN and inf as Python writes them;
        numpy scalars as floats); None when a field will not encode (nothing remembered)."""
        try:
            found = [asdict(d) for d in self.found]
            return json.dumps({"fingerprint": self.fingerprint, "found": found}, default=float)
        except (TypeError, ValueError):
            return None

    @classmethod
    def from_json(cls, text: str | None) -> LookMemo | None:
        """The memo :meth:`to_json` wrote; None for nothing, or for text it did not write."""
        if not text:
            return None
        try:
            data = json.loads(text)
            fingerprint, found = data["fingerprint"], data["found"]
            if not isinstance(fingerprint, str) or not isinstance(found, list):
                return None
            return cls(fingerprint, tuple(EseDetection(**d) for d in found))
        except Exception:  # any text it cannot read (even too deeply nested) only costs the saving
            return None


@dataclass(frozen=True)
class FullTest:
    """One full test of a source's curve as the schedule needs it: its detections, whether
    an ingress at the end of the data is still coming in (:func:`ingress_pending`), and the
    look's memo for the next look's earlier search (:class:`LookMemo`)."""

    found: list[EseDetection]
    ingress_pending: bool
    ingress_unsettled: bool = False
    memo: LookMemo | None = None


def full_test(mjd: ArrayLike, flux: ArrayLike, err: ArrayLike, params: EseParams = LIVE_PARAMS) -> FullTest:
    """``ese_edge.detect_all`` on one curve, with what the schedule reads from its refusals
    (raises ``EseInputError`` as it does). The job and the benches' replay both call this."""
    refusals: list[str] = []
    found = detect_all(mjd, flux, err, params, refusals=refusals)
    memo = LookMemo(curve_fingerprint(mjd, flux, err, params), tuple(found))
    return FullTest(found, ingress_pending(refusals), ingress_unsettled(refusals), memo)


def ingress_pending(refusals: Sequence[str]) -> bool:
    """Was the best-fitting trial at the end of the data refused for too little ingress past
    half depth (``CORE_PENDING``; ``refusals`` as ``ese_edge.detect_all`` gives them, best
    fitting first)? That trial passed the white-significance, depth and baseline tests, and
    nothing after the core tests judged it: the ingress may pass once a few more days of it
    are in. The best one only: wide trials whose minimum lies far past the end have little
    core whatever the data, and a step that stays low (refused as a step when best fitted)
    would otherwise be looked at every ``PENDING_DAYS`` for as long as it lasts.

    Or (ese-drw-3.13) the best trial was refused as a fade and the next one for its core:
    a young ingress is as straight as a fade until its bottom shows, and the lens trials
    that would show it have too little core yet (seed 21 of the injection bench at a daily
    cadence: an 86 %-deep 29-d ingress refused so on day 357, found from day 360 on, next
    looked at after the end of the data)."""
    if not refusals:
        return False
    runner_up = refusals[1] if len(refusals) > 1 else None
    return refusals[0] in CORE_PENDING or (refusals[0] == "fade" and runner_up in CORE_PENDING)


def ingress_unsettled(refusals: Sequence[str]) -> bool:
    """Was the best-fitting trial at the end of the data refused for its shape
    (``UNSETTLED``: ``fade``, which neither the Gaussian nor the physical lens beat;
    ``flat_bottom``, a bottom the Gaussian cannot make and the physical lens did not beat the
    step with; since ese-drw-3.17 ``flare``, a flare fits it better; since ese-drw-3.21
    ``step``, a step fits it better)? After an ingress stops being :func:`ingress_pending`,
    this is what a strong lens's young floor looks like for some days: a floor a few days
    long is fitted as well by a fade's decline, a flare's decay or a step, until more of it
    is in and its curvature shows (ese-drw-3.15, :func:`tested`)."""
    return bool(refusals) and refusals[0] in UNSETTLED


def tested(
    state: RunningState,
    idx: int,
    now_mjd: float,
    found_any: bool,
    ingress_pending: bool = False,
    ingress_unsettled: bool = False,
) -> None:
    """Record a full test of source ``idx``. A fruitless triggered test doubles its back-off
    (to ``MAX_BACKOFF_DAYS``), restarts its CUSUM and watches the source for ``WATCH_DAYS``
    (due every ``MAX_BACKOFF_DAYS``: the recovery is to come); a test whose search found something
    is looked at again ``PERSIST_DAYS`` later (``recheck_at``), when the same event, if it is
    one, can persist (ese-drw-3.6), and arms the trigger (its baseline frozen).

    ``recheck_at`` since ese-drw-3.9: 3.6 scheduled that look through the armed CUSUM alone,
    which the next points lower by K each when they are not below the frozen baseline (a
    slow dip the EWMA had followed), so the look came at the 60-d refresh (seed 21 of the
    injection bench: a 64 %-deep 178-d dip found at days 124 and 183 and not persisted, next
    looked at on day 244, then 305, never a candidate; the whole year's curve scores 12.7).

    ``ingress_pending`` (:func:`ingress_pending`, ese-drw-3.12): the test's ingress at the end
    of the data was refused for too little core; it is looked at again ``PENDING_DAYS``
    later (sooner than ``PERSIST_DAYS``, when it found something too), its back-off and
    watch as for any fruitless test. Why: after a triggered test the back-off had reached
    6-12 d, and the next look at the ingress came that late (seed 41 of the injection bench:
    a 60 %-deep 23-d ingress at SNR 16 and a 32 %-deep 20-d one at SNR 187, refused for their
    core 3 d before the end of the data, persisting at live FAP <= 0.002 from 1 d before it,
    next due 9 d after it). ``recheck_at`` holds the look's due time counted in transits
    (:func:`transits`; until ese-drw-3.12 the look's time + ``PERSIST_DAYS`` in days).

    ``ingress_unsettled`` (:func:`ingress_unsettled`, ese-drw-3.15): a look made while a
    pending ingress's look was outstanding (``recheck_at`` set ``PENDING_DAYS`` after the
    test before; read from the state the job keeps, so no new column) whose ingress is no
    longer pending but refused for its shape (``UNSETTLED``) asks for one more look
    ``PERSIST_DAYS`` later; that one was not asked for by a pending ingress, so the chain
    ends there (which needs ``PENDING_DAYS`` != ``PERSIST_DAYS``). Any look counts, not only
    one at or past ``recheck_at``: the job tests a source on its own last point, which may
    lie before the due time the chunk's clock met. Why: the ingress passed its core tests
    and its floor is days old; without this the next look was the watch's,
    ``MAX_BACKOFF_DAYS`` after the alarm's test (lens seed 31 of the injection bench: a
    96 %-deep 24-d strong lens refused so 10 d before the end of the data, found from 3 d
    later at live FAP 4e-5, never looked at again)."""
    asked_as_pending = bool(
        np.isclose(state.recheck_at[idx] - state.last_test_mjd[idx], transits(PENDING_DAYS))
    )
    one_more = asked_as_pending and ingress_unsettled and not ingress_pending and not found_any
    state.last_test_mjd[idx] = now_mjd
    state.last_test_n[idx] = state.n[idx]
    waits = [
        days
        for days, wanted in ((PENDING_DAYS, ingress_pending), (PERSIST_DAYS, found_any or one_more))
        if wanted
    ]
    state.recheck_at[idx] = now_mjd + transits(min(waits)) if waits else np.inf
    if found_any:
        state.backoff[idx] = PERSIST_DAYS
        state.cusum[idx] = max(state.cusum[idx], CUSUM_H)
    elif state.cusum[idx] >= CUSUM_H:
        state.backoff[idx] = min(2.0 * state.backoff[idx], MAX_BACKOFF_DAYS)
        state.cusum[idx] = 0.0
        state.watch_until[idx] = now_mjd + WATCH_DAYS


class Earlier:
    """The same source's curve as it was ``PERSIST_DAYS`` before its last point, as far as
    :func:`persisted` and the hysteresis of rejections need it: ``search`` (its
    ``detect_all``, or the last look's detections when that look saw this very curve:
    :class:`LookMemo`; run once, on first use: most looks find nothing and never need it),
    ``refit`` (a dip re-tested there at its own (t0, W), ``ese_edge.refit``) and
    ``recovered`` (``ese_edge.recovery_shown`` there). :func:`earlier_look` makes one from a
    curve."""

    def __init__(
        self,
        search: Callable[[], list[EseDetection]],
        refit: Callable[[EseDetection], EseDetection | None],
        recovered: Callable[[EseDetection], bool | None] = lambda d: None,
    ) -> None:
        self._search = search
        self.refit = refit
        self.recovered = recovered
        self._found: list[EseDetection] | None = None

    @property
    def found(self) -> list[EseDetection]:
        if self._found is None:
            self._found = self._search()
        return self._found


def earlier_look(
    mjd: ArrayLike,
    flux: ArrayLike,
    err: ArrayLike,
    params: EseParams = LIVE_PARAMS,
    previous: LookMemo | None = None,
) -> Earlier:
    """:class:`Earlier` on the points of one curve at least ``PERSIST_DAYS`` transits
    (:func:`transits`) older than its last; a curve the detector refuses there gives
    nothing to compare with (None / []). ``previous``: the source's last look's memo, whose
    detections are the search's when that look's curve is this earlier curve."""
    t = np.asarray(mjd, dtype=float)
    keep = t <= (float(np.max(t)) if t.size else 0.0) - transits(PERSIST_DAYS)
    curve = (t[keep], np.asarray(flux, dtype=float)[keep], np.asarray(err, dtype=float)[keep])

    def search() -> list[EseDetection]:
        if previous is not None and previous.fingerprint == curve_fingerprint(*curve, params):
            return list(previous.found)
        try:
            return detect_all(*curve, params)
        except EseInputError:
            return []

    return Earlier(search, refit_check(*curve, params), recovery_check(*curve, params))


def persisted(d: EseDetection, earlier: Earlier) -> EseDetection | None:
    """``d`` if the same event was there ``PERSIST_DAYS`` earlier, scored by the lesser of
    the two looks; None otherwise (module docstring, "Persistence").

    The same event earlier: a detection of ``d``'s kind overlapping it in the earlier
    curve's search (its score: the highest such), or else ``d``'s own dip re-tested there
    at its (t0, W) (``refit``: a two-sided dip the earlier search ranked below another
    trial, an ingress whose one-sided tests the shorter curve cannot pass yet).
    """
    same = [e.score for e in earlier.found if e.kind == d.kind and _overlaps(e, d)]
    if same:
        before = max(same)
    else:
        again = earlier.refit(d)
        if again is None:
            return None
        before = again.score
    return replace(d, score=min(d.score, before))


def live_rated(found: Sequence[EseDetection], earlier: Earlier) -> list[EseDetection]:
    """The full test's detections that persisted (:func:`persisted`), with their live
    false-alarm probability (module docstring)."""
    kept = (persisted(d, earlier) for d in found)
    return [with_live_false_alarm_probability(d) for d in kept if d is not None]


def live_refit(
    refit: Callable[[EseDetection], EseDetection | None], earlier: Earlier
) -> Callable[[EseDetection], EseDetection | None]:
    """``refit`` with persistence both ways (module docstring, "Hysteresis"): the re-fitted
    detection, scored by the lesser of the two looks and carrying the live false-alarm
    probability, when the dip stands on this curve and on the earlier one; None (reject)
    when it stands on neither; else the candidate's detection unchanged (kept, not moved:
    one look's verdict either way is not an event)."""

    def rated(d: EseDetection) -> EseDetection | None:
        again = refit(d)
        before = earlier.refit(d)
        if again is None and before is None:
            return None
        if again is None or before is None:
            return d
        return with_live_false_alarm_probability(replace(again, score=min(again.score, before.score)))

    return rated


def live_recovered(
    recovered: Callable[[EseDetection], bool | None], earlier: Earlier
) -> Callable[[EseDetection], bool | None]:
    """``recovered`` whose "no recovery" (False: reject the ongoing dip) must hold on the
    earlier curve too (module docstring, "Hysteresis"); otherwise undecided (None) where
    it said False."""

    def check(d: EseDetection) -> bool | None:
        now = recovered(d)
        if now is False and earlier.recovered(d) is not False:
            return None
        return now

    return check


def still_coming_in(
    recovered: Callable[[EseDetection], bool | None], found: Sequence[EseDetection]
) -> Callable[[EseDetection], bool | None]:
    """``recovered`` whose "no recovery" (False: reject the ongoing dip) is undecided (None)
    while this look's own search, persisted or not, still finds an ingress at the end of the
    data overlapping the dip (ese-drw-3.13).

    Why: "no recovery" reads the candidate's own fit: from its t0 + W/2 on the flux stayed
    at the dip's level. An ingress that goes on deepening past the first fit's minimum (a
    wider or later dip than the young ingress first showed) stays low there, and the look
    that said so was the look whose search had moved the ingress later; that detection had
    not yet persisted, so it matched nothing and the candidate was rejected (seed 21 of the
    injection bench at a daily cadence: a 36 %-deep 104-d ingress found at FAP 7e-4 on day
    337, rejected on day 347 while the search found it on [317, 357]; found again and
    rejected again on day 362, [320, 376]). A fade or a step is still rejected: by its own
    search when that no longer finds an ingress there, and at ``MAX_ONGOING_DAYS``."""

    def check(d: EseDetection) -> bool | None:
        now = recovered(d)
        if now is False and any(e.kind == "ongoing" and _overlaps(e, d) for e in found):
            return None
        return now

    return check


@dataclass
class Candidate:
    """One candidate as the tracker keeps it (the database row's science fields)."""

    detection: EseDetection
    phase: str
    first_alert_mjd: float
    history: list[tuple[float, str]] = field(default_factory=list)


def look(
    candidates: list[Candidate],
    found: list[EseDetection],
    mjd: ArrayLike,
    flux: ArrayLike,
    err: ArrayLike,
    now_mjd: float,
    params: EseParams = LIVE_PARAMS,
    *,
    live: bool = True,
    previous: LookMemo | None = None,
) -> list[tuple[Candidate, str | None, str]]:
    """One full test's outcome applied to a source's candidates: ``found`` (the test's
    detections on the curve ``mjd, flux, err``) through :func:`transition`, with the curve's
    recovery and refit checks; ``live`` (the job's many looks): persisted and rated by the
    live null first (:func:`live_rated`, :func:`live_refit`), as the live table was made
    (``previous``: the source's last look's memo, :func:`earlier_look`).
    The job and the benches' replay both call this, so they run one code path."""
    recovered = recovery_check(mjd, flux, err, params)
    again = refit_check(mjd, flux, err, params)
    if live:
        earlier = earlier_look(mjd, flux, err, params, previous)
        rated, again = live_rated(found, earlier), live_refit(again, earlier)
        recovered = still_coming_in(live_recovered(recovered, earlier), found)
        found = rated
    return transition(candidates, found, now_mjd, recovered, again)


def _overlaps(a: EseDetection, b: EseDetection) -> bool:
    return a.start_mjd <= b.end_mjd and a.end_mjd >= b.start_mjd


def carried(old: EseDetection, new: EseDetection) -> EseDetection:
    """``new`` (a candidate's detection at this look) carrying the lowest false-alarm
    probability the candidate has had (ese-drw-3.8): the score, window and depth are this
    look's, the probability is that of its most extreme look.

    Why: the live table is made of the highest score any candidate of a steady source-year
    carried at any look (``ese_far``, "live"), so a candidate that once carried a score s is
    as rare as that table says whatever its later looks show; rating it by its latest look
    only is stricter than the calibration and dropped real events whose score sagged as
    data arrived (seed 21: start-cut dips at egress score 1.85-2.14 that ended the year at
    1.02-1.04, live FAP 6e-5 then, 0.005-0.006 at the end). The candidate's probability is
    then at most the source-year's own minimum over looks, so the rate at which steady
    sources end the year with a candidate at FAP <= p stays at most p (the any-alert rate).
    """
    p_old, p_new = old.false_alarm_probability, new.false_alarm_probability
    if p_old is None or (p_new is not None and p_new <= p_old):
        return new
    return replace(new, false_alarm_probability=p_old)


def transition(
    candidates: list[Candidate],
    detections: list[EseDetection],
    now_mjd: float,
    recovered: Callable[[EseDetection], bool | None] | None = None,
    refit: Callable[[EseDetection], EseDetection | None] | None = None,
) -> list[tuple[Candidate, str | None, str]]:
    """Apply one full test's detections to a source's candidates (in place).

    ``recovered`` (``dsa110.science.ese_edge.recovery_shown`` on the source's curve) says
    whether an unmatched ``ongoing`` candidate's flux has come back after its minimum:
    False (it stayed low: a fade or a step) rejects it at once instead of at the deadline.
    ``refit`` (``dsa110.science.ese_edge.refit``) re-tests a confirmed candidate the search
    no longer finds at its own (t0, W): it stays confirmed, with that fit, while the dip
    there still passes (ese-drw-3.3), and is rejected otherwise.
    A new candidate over an event whose earlier candidates were rejected carries the lowest
    probability they had (:func:`carried`, ese-drw-3.9): it is the same event, found again
    when more data came (seed 31: a 61 %-deep start-cut dip confirmed at FAP 3e-5, rejected
    at the next looks, found again at day 352 at 0.007). The live table counts the event's
    most extreme look whatever became of its candidates, so the argument of
    :func:`carried` holds.
    Returns (candidate, old phase or None for a new one, new phase) for every candidate
    that was created or changed phase: the alerts to write.
    """
    changes: list[tuple[Candidate, str | None, str]] = []
    used: set[int] = set()
    for cand in candidates:
        if cand.phase != "ongoing":
            continue
        match = next(
            (i for i, d in enumerate(detections) if i not in used and _overlaps(d, cand.detection)), None
        )
        if match is not None and detections[match].kind == "dip":
            used.add(match)
            cand.detection, cand.phase = carried(cand.detection, detections[match]), "confirmed"
        elif match is not None and detections[match].kind == "ongoing":
            used.add(match)
            cand.detection = carried(cand.detection, detections[match])
            if now_mjd - cand.detection.start_mjd <= MAX_ONGOING_DAYS:
                continue
            cand.phase = "rejected"
        elif now_mjd > cand.detection.end_mjd + REJECT_AFTER_FWHM * cand.detection.fwhm_days + 10.0:
            cand.phase = "rejected"
        elif recovered is not None and recovered(cand.detection) is False:
            cand.phase = "rejected"  # past its minimum + W/2 and still low: no lens
        else:
            continue  # not seen this time; a recovery may still make it two-sided
        cand.history.append((now_mjd, cand.phase))
        changes.append((cand, "ongoing", cand.phase))
    for i, d in enumerate(detections):
        if i in used:
            continue
        same = [c for c in candidates if c.phase != "rejected" and _overlaps(d, c.detection)]
        if same:
            for c in same:
                if c.phase == "confirmed" and d.kind != "ongoing":
                    c.detection = carried(c.detection, d)  # refine a confirmed event's fit as data arrive
            continue
        rated = d
        for gone in (c for c in candidates if c.phase == "rejected" and _overlaps(d, c.detection)):
            rated = carried(gone.detection, rated)  # the event's rating, as for one candidate (3.9)
        phase = "ongoing" if d.kind == "ongoing" else "confirmed"
        cand = Candidate(rated, phase, now_mjd, [(now_mjd, phase)])
        candidates.append(cand)
        changes.append((cand, None, phase))
    for cand in candidates:  # support lost: a later full test on more data no longer finds it
        if cand.phase == "confirmed" and not any(_overlaps(d, cand.detection) for d in detections):
            again = refit(cand.detection) if refit is not None else None
            if again is not None:  # its own dip, re-tested where it was, still stands
                cand.detection = carried(cand.detection, again)
                continue
            cand.phase = "rejected"
            cand.history.append((now_mjd, cand.phase))
            changes.append((cand, "confirmed", "rejected"))
    return changes
