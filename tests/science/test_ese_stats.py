"""ese-drw-3.0's new statistics against values computed by hand (in the comments)."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from dsa110.science import ese_edge, ese_tracker
from dsa110.science.ese import DEFAULT_PARAMS, EseDetection, EseInputError, _conditional_sigma, red_margin_of
from dsa110.science.ese_edge import _best_step_chi2, lens_chi2
from dsa110.science.ese_far import (
    DEEP_RED_RATIO,
    LIVE_KEYS,
    NULL_TABLES,
    QUIET_RED_RMS,
    STRONG_RED_RMS,
    any_kind_tables,
    false_alarm_probability,
    live_false_alarm_probability,
    live_key,
    lookup,
    survival_table,
    with_live_false_alarm_probability,
)
from dsa110.science.ese_live_null import LIVE_NULL_TABLES
from dsa110.science.ese_tracker import (
    CUSUM_H,
    LIVE_PARAMS,
    MAX_BACKOFF_DAYS,
    PENDING_DAYS,
    PERSIST_DAYS,
    REFRESH_DAYS,
    SIDEREAL_DAY,
    WATCH_DAYS,
    Candidate,
    Earlier,
    LookMemo,
    RunningState,
    carried,
    curve_fingerprint,
    due,
    earlier_look,
    follows,
    full_test,
    ingress_pending,
    ingress_unsettled,
    live_rated,
    live_recovered,
    live_refit,
    look,
    persisted,
    still_coming_in,
    transition,
    transits,
    update,
)
from dsa110.science.ese_tracker import tested as record_test


def test_conditional_sigma_is_aitken_gls_of_the_dip() -> None:
    # Whitened Gram matrix of (y, 1, -g): N = [[4, 2], [2, 3]], 1'y = 6, -g'y = 5.
    # det N = 4*3 - 2*2 = 8; a = (4*5 - 2*6) / 8 = 1; var a = (N^-1)[1,1] = 4/8 = 0.5;
    # S_cond = 1 / sqrt(0.5) = 1.414214.
    gram = np.array([[99.0, 6.0, 5.0], [6.0, 4.0, 2.0], [5.0, 2.0, 3.0]])
    assert _conditional_sigma(gram) == pytest.approx(math.sqrt(2.0))
    # A singular normal matrix (the template is a constant): no test, S_cond = 0.
    assert _conditional_sigma(np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])) == 0.0


def test_second_red_noise_test_applies_to_long_dips_only() -> None:
    p = DEFAULT_PARAMS  # min_red_sigma 5, min_cond_sigma 7, long_fwhm_days 40, long_min_red_sigma 3
    # Short dip (20 d): the likelihood ratio alone, 4 / 5 = 0.8 (fails).
    assert red_margin_of(4.0, 14.0, 20.0, p) == pytest.approx(0.8)
    # Long dip (60 d), S_red 4 >= 3: max(4 / 5, 14 / 7) = 2.0 (passes on S_cond).
    assert red_margin_of(4.0, 14.0, 60.0, p) == pytest.approx(2.0)
    # Long dip but S_red 2.5 < 3: the dip does not beat red noise alone; 2.5 / 5 = 0.5.
    assert red_margin_of(2.5, 14.0, 60.0, p) == pytest.approx(0.5)
    # Long dip, weak S_cond (a red-noise wander: 3.5): max(6 / 5, 3.5 / 7) = 1.2.
    assert red_margin_of(6.0, 3.5, 60.0, p) == pytest.approx(1.2)


def test_best_step_chi2() -> None:
    # y = 0, 1, 0, 2 (unit weights). Splits: [0] | [1,0,2]: 0 + (0 + 1 + 1) = 2;
    # [0,1] | [0,2]: 0.5 + 2 = 2.5; [0,1,0] | [2]: (1/9 + 4/9 + 1/9) + 0 = 2/3. Minimum 2/3.
    assert _best_step_chi2(np.array([0.0, 1.0, 0.0, 2.0]), np.ones(4)) == pytest.approx(2.0 / 3.0)
    # Weights count: y = 0, 1, 1 with w = 1, 1, 4: [0] | [1,1] = 0 (a clean step).
    assert _best_step_chi2(np.array([0.0, 1.0, 1.0]), np.array([1.0, 1.0, 4.0])) == pytest.approx(0.0)
    # [0, 3] | [3] with w = 1, 2, 1: left mean (0 + 6) / 3 = 2, chi2 = 1*4 + 2*1 = 6; [0] | [3, 3] = 0.
    assert _best_step_chi2(np.array([0.0, 3.0, 3.0]), np.array([1.0, 2.0, 1.0])) == pytest.approx(0.0)


def test_lens_chi2_by_hand() -> None:
    # 30 noise-free points, 1 % errors (w = 1e4), a lens of W = 10 d at t0 = 20:
    # g = exp(-(t - 20)^2 / 2 s^2), s = W / 2.3548.
    t = np.linspace(0.0, 29.0, 30)
    g = np.exp(-0.5 * ((t - 20.0) * 2.3548200450309493 / 10.0) ** 2)
    w = np.full(30, 1e4)
    # The plain lens y = 1 - 0.4 g fits exactly: chi2 0, the caustic not needed.
    assert lens_chi2(t, 1.0 - 0.4 * g, w, g, 20.0, 10.0) == pytest.approx(0.0, abs=1e-9)
    # With a caustic of 0.3 at t0 - 0.7 W (on the CAUSTIC_OFFSETS grid), s_c = 0.1 W / 2.3548:
    # the caustic model fits exactly (chi2 0) and pays 2 ln 30 = 6.802; the plain lens's chi2
    # is that of least squares of y on (1, -g), which is larger, so the answer is 6.802.
    h = np.exp(-0.5 * ((t - 20.0 + 7.0) * 2.3548200450309493 / 1.0) ** 2)
    y = 1.0 - 0.4 * g + 0.3 * h
    x = np.stack([np.ones(30), -g], -1)
    plain = 1e4 * float(np.sum((y - x @ np.linalg.lstsq(x, y, rcond=None)[0]) ** 2))
    assert plain > 2.0 * np.log(30.0)
    assert lens_chi2(t, y, w, g, 20.0, 10.0) == pytest.approx(2.0 * np.log(30.0), abs=1e-6)
    # A spike after the minimum (t = 27) is not where the model's caustic goes (t0 - k W:
    # 10-14.5 d, s_c 0.42 d, no overlap): the caustic column explains nothing there, so the
    # plain lens's least chi2 stands (the penalty is not paid).
    late = 1.0 - 0.4 * g + 0.3 * np.exp(-0.5 * ((t - 27.0) * 2.3548200450309493 / 1.0) ** 2)
    plain_late = 1e4 * float(np.sum((late - x @ np.linalg.lstsq(x, late, rcond=None)[0]) ** 2))
    assert plain_late > 100.0
    assert lens_chi2(t, late, w, g, 20.0, 10.0) == pytest.approx(plain_late, rel=1e-9)


def test_cusum_by_hand() -> None:
    state = RunningState.empty(1)
    idx = np.array([0])
    for y in (1.0, 3.0, 2.0, 2.0, 2.0):  # warm-up (n <= 5): no CUSUM; EWMA with alpha = 1/n
        update(state, idx, np.array([y]))
    # n=1: m=1, v=0; n=2: r=2, m=2, v=(1/2)(0 + 4/2)=1; n=3: r=0, v=(2/3)*1=2/3;
    # n=4: v=(3/4)(2/3)=1/2; n=5: v=(4/5)(1/2)=2/5.
    assert state.mean[0] == pytest.approx(2.0) and state.var[0] == pytest.approx(0.4)
    assert state.cusum[0] == 0.0
    # y=0: z = (2 - 0) / sqrt(0.4) = 3.162278, C = 3.162278 - 1 = 2.162278 < H: the baseline
    # still updates (every point does, not only the high ones): alpha = 1/6, r = -2,
    # m = 2 - 2/6 = 1.666667, v = (5/6)(0.4 + 4/6) = 0.888889.
    update(state, idx, np.array([0.0]))
    assert state.cusum[0] == pytest.approx(2.162278, abs=1e-6)
    assert state.mean[0] == pytest.approx(1.666667, abs=1e-6) and state.var[0] == pytest.approx(
        0.888889, abs=1e-6
    )
    # y=-10: z = 11.666667 / 0.942809 = 12.374369, C = 2.162278 + 11.374369 = 13.536647 >= H:
    # triggered, the baseline frozen.
    update(state, idx, np.array([-10.0]))
    assert state.cusum[0] == pytest.approx(13.536647, abs=1e-6) and state.cusum[0] >= CUSUM_H
    assert state.mean[0] == pytest.approx(1.666667, abs=1e-6)
    # Triggered, but 7 points < MIN_POINTS (20): not yet due for the full test.
    assert not due(state, idx, 60000.0, np.array([False]))[0]
    for _ in range(13):  # 20 points: due (never tested, triggered)
        update(state, idx, np.array([-10.0]))
    assert due(state, idx, 60000.0, np.array([False]))[0]
    assert state.mean[0] == pytest.approx(1.666667, abs=1e-6)
    # The test finds nothing: back-off 3 -> 6 d and the CUSUM restarts at 0.
    record_test(state, 0, 60000.0, found_any=False)
    assert state.backoff[0] == 6.0 and state.cusum[0] == 0.0
    update(state, idx, np.array([state.mean[0]]))  # z = 0: C stays 0, not a return: back-off kept
    assert state.cusum[0] == 0.0 and state.backoff[0] == 6.0
    update(state, idx, np.array([state.mean[0] - 3.0 * np.sqrt(state.var[0])]))  # z = 3: C = 2
    assert state.cusum[0] == pytest.approx(2.0)
    update(state, idx, np.array([100.0]))  # far above: C returns to 0 by itself, back-off reset
    assert state.cusum[0] == 0.0 and state.backoff[0] == 3.0


def test_back_off_is_capped_and_a_find_is_looked_at_again_when_it_can_persist() -> None:
    # ese-drw-3.6. Fruitless triggered tests: 3 -> 6 -> 12 -> 12 d (MAX_BACKOFF_DAYS).
    assert MAX_BACKOFF_DAYS == 12.0
    state = RunningState.empty(1)
    idx = np.array([0])
    for expected in (6.0, 12.0, 12.0):
        state.cusum[0] = CUSUM_H + 1.0
        record_test(state, 0, 60000.0, found_any=False)
        assert state.backoff[0] == expected and state.cusum[0] == 0.0
    # A test whose search found something (not yet persisted): due again PERSIST_DAYS later,
    # not a back-off later, even with the CUSUM under its threshold.
    state.n[0] = 50
    state.cusum[0] = 2.0
    record_test(state, 0, 60000.0, found_any=True)
    assert state.backoff[0] == PERSIST_DAYS and state.cusum[0] == CUSUM_H
    assert not due(state, idx, 60000.0 + PERSIST_DAYS - 0.1, np.array([False]))[0]
    assert due(state, idx, 60000.0 + PERSIST_DAYS, np.array([False]))[0]


def test_the_persistence_look_comes_when_the_points_lower_the_armed_cusum() -> None:
    # ese-drw-3.9. A find arms the CUSUM at H; points at the frozen baseline (z = 0) lower
    # it by K = 1 each, so it is under H after one point and, as in 3.6-3.8, no longer
    # triggered: the look PERSIST_DAYS later must come all the same (recheck_at).
    state = RunningState.empty(1)
    idx = np.array([0])
    state.n[0], state.mean[0], state.var[0] = 100, 1.0, 0.01
    record_test(state, 0, 60000.0, found_any=True)
    assert state.recheck_at[0] == 60000.0 + transits(PERSIST_DAYS)
    for _ in range(3):
        update(state, idx, np.array([1.0]))
    assert state.cusum[0] == CUSUM_H - 3.0  # 8 - 3 x (0 - 1): not triggered
    quiet = np.array([False])
    assert not due(state, idx, 60000.0 + PERSIST_DAYS - 0.1, quiet)[0]
    assert due(state, idx, 60000.0 + PERSIST_DAYS, quiet)[0]
    # That look finds something again: one more PERSIST_DAYS later; finds nothing: no recheck
    # (a refresh, as this one, neither watches: the CUSUM was not triggered).
    record_test(state, 0, 60005.0, found_any=True)
    assert state.recheck_at[0] == 60005.0 + transits(PERSIST_DAYS)
    state.cusum[0] = 0.0
    record_test(state, 0, 60010.0, found_any=False)
    assert state.recheck_at[0] == np.inf and state.watch_until[0] == -np.inf
    assert not due(state, idx, 60010.0 + PERSIST_DAYS, quiet)[0]


def test_waits_are_counted_in_transits_of_the_source() -> None:
    # ese-drw-3.10. One image a transit (every 0.99726957 d): the image 5 transits after a
    # find is 4.98635 d later, and the persistence look asked for PERSIST_DAYS (5 d) later
    # is due there, not at the 6th transit; 4 transits later (3.98908 d) it is not. The same
    # for a back-off (12 transits: 11.96724 d) and the refresh (60 transits: 59.83617 d);
    # transits(d) = d x 0.99726957 - 0.05.
    assert transits(5.0) == pytest.approx(4.93635, abs=1e-5)
    state = RunningState.empty(1)
    idx = np.array([0])
    quiet = np.array([False])
    state.n[0], state.mean[0], state.var[0] = 100, 1.0, 0.01
    record_test(state, 0, 60000.0, found_any=True)
    assert not due(state, idx, 60000.0 + 4 * SIDEREAL_DAY, quiet)[0]
    assert due(state, idx, 60000.0 + 5 * SIDEREAL_DAY, quiet)[0]
    state.cusum[0] = CUSUM_H + 1.0
    state.backoff[0] = MAX_BACKOFF_DAYS
    record_test(state, 0, 60000.0, found_any=False)  # fruitless: watched every 12 d
    assert not due(state, idx, 60000.0 + 11 * SIDEREAL_DAY, quiet)[0]
    assert due(state, idx, 60000.0 + 12 * SIDEREAL_DAY, quiet)[0]
    state.watch_until[0] = -np.inf
    assert not due(state, idx, 60000.0 + 59 * SIDEREAL_DAY, quiet)[0]
    assert due(state, idx, 60000.0 + REFRESH_DAYS * SIDEREAL_DAY, quiet)[0]


def test_a_fruitless_alarm_is_watched_for_the_recovery_then_left_to_the_refresh() -> None:
    # ese-drw-3.7. After a triggered test that found nothing, the CUSUM is 0 (no trigger),
    # nothing is followed and the point count has not grown 1.5x: without the watch the next
    # look would be the refresh, REFRESH_DAYS later.
    state = RunningState.empty(1)
    idx = np.array([0])
    state.n[0], state.cusum[0] = 100, CUSUM_H + 1.0
    record_test(state, 0, 60000.0, found_any=False)
    assert state.watch_until[0] == 60000.0 + WATCH_DAYS and state.cusum[0] == 0.0
    state.n[0] = 110  # < 1.5 x 100
    quiet = np.array([False])
    assert not due(state, idx, 60000.0 + MAX_BACKOFF_DAYS - 0.1, quiet)[0]
    assert due(state, idx, 60000.0 + MAX_BACKOFF_DAYS, quiet)[0]
    # A watched look that finds nothing again does not extend the watch (no alarm now) ...
    record_test(state, 0, 60000.0 + 48.0, found_any=False)
    assert state.watch_until[0] == 60000.0 + WATCH_DAYS
    assert due(state, idx, 60000.0 + WATCH_DAYS, quiet)[0]  # 12 d after 48: the last watched look
    record_test(state, 0, 60000.0 + WATCH_DAYS, found_any=False)
    # ... and once it is over, only the refresh (or a new alarm) brings the next look.
    assert not due(state, idx, 60000.0 + WATCH_DAYS + 30.0, quiet)[0]
    assert due(state, idx, 60000.0 + WATCH_DAYS + REFRESH_DAYS, quiet)[0]
    # An untriggered test (a refresh) that finds nothing watches nothing.
    fresh = RunningState.empty(1)
    fresh.n[0] = 100
    record_test(fresh, 0, 60000.0, found_any=False)
    assert fresh.watch_until[0] == -np.inf


def test_an_ingress_refused_for_its_core_is_looked_at_again_within_days() -> None:
    # ese-drw-3.12. The best-fitting trial at the end refused for too little core (the first
    # refusal: trials come best fitting first) asks for a look PENDING_DAYS transits later
    # (2 x 0.99726957 - 0.05 = 1.94454 d), not a back-off (12 d) later; a step or a fade best
    # fitted does not.
    assert ingress_pending(["core_points", "step"]) and ingress_pending(["core_days"])
    assert not ingress_pending(["step", "core_points"])
    assert not ingress_pending(["none"]) and not ingress_pending([])
    # ese-drw-3.13: a fade best fitted while the next trial's core is too short is a young
    # ingress as much as a fade; a fade alone, or a fade before a step, is not.
    assert ingress_pending(["fade", "core_points", "step"]) and ingress_pending(["fade", "core_days"])
    assert not ingress_pending(["fade"]) and not ingress_pending(["fade", "step", "core_points"])
    state = RunningState.empty(1)
    idx = np.array([0])
    quiet = np.array([False])
    state.n[0], state.cusum[0], state.backoff[0] = 100, CUSUM_H + 1.0, MAX_BACKOFF_DAYS
    record_test(state, 0, 60000.0, found_any=False, ingress_pending=True)
    assert state.recheck_at[0] == pytest.approx(60000.0 + 1.94454, abs=1e-5)
    assert state.backoff[0] == MAX_BACKOFF_DAYS and state.cusum[0] == 0.0  # fruitless all the same
    assert not due(state, idx, 60000.0 + SIDEREAL_DAY, quiet)[0]
    assert due(state, idx, 60000.0 + PENDING_DAYS * SIDEREAL_DAY, quiet)[0]
    # Found something and pending: the sooner of the two looks.
    record_test(state, 0, 60010.0, found_any=True, ingress_pending=True)
    assert state.recheck_at[0] == 60010.0 + transits(PENDING_DAYS)
    record_test(state, 0, 60020.0, found_any=False, ingress_pending=False)
    assert state.recheck_at[0] == np.inf


def test_an_ingress_no_longer_pending_but_refused_for_its_shape_is_looked_at_once_more() -> None:
    # ese-drw-3.15. A look a pending ingress asked for (recheck_at = last test + transits(2))
    # whose ingress is now refused for its shape (a fade, a flat bottom, a flare, a step)
    # asks for one more look transits(5) = 4.93635 d later; that look was not asked for by a
    # pending ingress, so the same outcome there asks for nothing more.
    assert ingress_unsettled(["fade", "flat_bottom"]) and ingress_unsettled(["flat_bottom", "step"])
    assert ingress_unsettled(["flare", "core_days"])  # ese-drw-3.17
    assert ingress_unsettled(["step", "fade"])  # ese-drw-3.21
    assert not ingress_unsettled(["score", "step"]) and not ingress_unsettled(["core_support"])
    assert not ingress_unsettled(["baseline"]) and not ingress_unsettled([])
    state = RunningState.empty(1)
    idx = np.array([0])
    quiet = np.array([False])
    state.n[0], state.cusum[0], state.backoff[0] = 100, CUSUM_H + 1.0, MAX_BACKOFF_DAYS
    record_test(state, 0, 60000.0, found_any=False, ingress_pending=True)
    assert state.recheck_at[0] == pytest.approx(60001.94454, abs=1e-5)
    record_test(state, 0, 60002.0, found_any=False, ingress_unsettled=True)
    assert state.recheck_at[0] == pytest.approx(60002.0 + 4.93635, abs=1e-5)
    assert not due(state, idx, 60002.0 + 4 * SIDEREAL_DAY, quiet)[0]
    assert due(state, idx, 60002.0 + 5 * SIDEREAL_DAY, quiet)[0]
    record_test(state, 0, 60007.0, found_any=False, ingress_unsettled=True)
    assert state.recheck_at[0] == np.inf
    # A look that nothing pending asked for (a watch's, 12 d after the last test) does not
    # start the chain, nor does an unsettled ingress at a look whose ingress is pending again
    # (the pending wait, 2 d, stands).
    record_test(state, 0, 60019.0, found_any=False, ingress_unsettled=True)
    assert state.recheck_at[0] == np.inf
    record_test(state, 0, 60030.0, found_any=False, ingress_pending=True)
    record_test(state, 0, 60032.0, found_any=False, ingress_pending=True, ingress_unsettled=True)
    assert state.recheck_at[0] == pytest.approx(60032.0 + 1.94454, abs=1e-5)
    # The job tests a source on its own last point, which may come before the due time
    # (60033.94454) the chunk's clock met: that look counts as the pending one all the same.
    record_test(state, 0, 60033.5, found_any=False, ingress_unsettled=True)
    assert state.recheck_at[0] == pytest.approx(60033.5 + 4.93635, abs=1e-5)


@pytest.mark.parametrize(
    ("unsettled", "alerted"),
    [(("fade", "flat_bottom", "flare", "step"), True), (("fade", "flat_bottom", "flare"), False)],
)
def test_a_strong_lens_floor_refused_as_a_step_after_its_core_came_in_is_looked_at_once_more(
    monkeypatch: pytest.MonkeyPatch, unsettled: tuple[str, ...], alerted: bool
) -> None:
    # Lens seed 51 of the injection bench, source 372: a 97 %-deep 22-d lens ingress, its
    # half depth 14 d before the end of the data. Three looks refused it for its core
    # (pending, 2 d apart), the fourth, 6 d before the end, as a step; before ese-drw-3.21
    # (the second case: "step" not unsettled) it was never looked at again. Looked at once
    # more, 5 transits later, it is an ongoing candidate at live FAP 1.5e-5 in the bench's
    # replay of the job.
    assert set(ese_tracker.UNSETTLED) == {"fade", "flat_bottom", "flare", "step"}
    from bench.ese_replay import replay
    from bench.ese_sim import normalised, simulate

    monkeypatch.setattr(ese_tracker, "UNSETTLED", unsettled)
    sim = simulate(51, 500, cut_fraction=0.3, cadence="demo", ese_shape="lens")
    lens = sim.sources[372].params
    assert lens["depth"] > 0.95 and lens["cut"] > 0
    flux, err = normalised(sim)
    run = replay(sim.image_mjd, flux[372:373], err[372:373])
    ongoing = [
        c
        for c in run.candidates[0]
        if c.phase == "ongoing"
        and (c.detection.false_alarm_probability or 1.0) <= 0.002
        and c.detection.start_mjd <= lens["t0"] <= c.detection.end_mjd
    ]
    assert bool(ongoing) == alerted


def test_a_rise_does_not_widen_the_scale_a_drop_is_measured_by() -> None:
    # ese-drw-3.15. Warm (n = 100), m = 1, s**2 = 0.01 (s = 0.1). A point at 1.3 (3 s above,
    # inside the 4 s clip) updates both: alpha = max(1/101, 1/50) = 0.02, m = 1.006,
    # s**2 = 0.98 (0.01 + 0.02 x 0.09) = 0.011564.
    state = RunningState.empty(1)
    idx = np.array([0])
    state.n[0], state.mean[0], state.var[0] = 100, 1.0, 0.01
    update(state, idx, np.array([1.3]))
    assert state.mean[0] == pytest.approx(1.006) and state.var[0] == pytest.approx(0.011564)
    # A point at 1.5 (5 s above): the baseline moves by the clipped residual, 0.02 x 0.4 =
    # 0.008, the scale does not (3.14: s**2 = 0.98 (0.01 + 0.02 x 0.16) = 0.012936); C = 0.
    state.n[0], state.mean[0], state.var[0] = 100, 1.0, 0.01
    update(state, idx, np.array([1.5]))
    assert state.mean[0] == pytest.approx(1.008) and state.var[0] == pytest.approx(0.01)
    assert state.cusum[0] == 0.0
    # Then 0.7: z = 0.308 / 0.1 = 3.08, C = 2.08; r = -0.308: s**2 = 0.98 (0.01 + 0.02 x
    # 0.094864) = 0.0116593.
    update(state, idx, np.array([0.7]))
    assert state.cusum[0] == pytest.approx(2.08) and state.var[0] == pytest.approx(0.0116593, abs=1e-7)
    # A weak lens's bright shoulder (ten points at 1.6, 6 s above) before its ingress (a drop
    # to 0.7): the trigger fires within the first five points of the drop (C 10.5; with
    # the shoulder in the scale, as in 3.14, s grew to 0.25 and C was 2.9).
    shoulder = RunningState.empty(1)
    shoulder.n[0], shoulder.mean[0], shoulder.var[0] = 100, 1.0, 0.01
    for _ in range(10):
        update(shoulder, idx, np.array([1.6]))
    assert shoulder.var[0] == pytest.approx(0.01)
    for _ in range(5):
        update(shoulder, idx, np.array([0.7]))
    assert shoulder.cusum[0] >= CUSUM_H


def test_the_full_test_says_when_an_ingress_is_still_coming_in() -> None:
    # A flat curve (1 +- 1 %, one point a day for 200 d) whose last k points drop to 0.6: with
    # 1-4 points past the drop the best trial has fewer than edge_min_core points past half
    # depth (an ingress, an outlier or a step: the data cannot tell yet, look again soon);
    # with 6 the best fit is a step, refused as one; flat, no trial reaches the floors.
    t = np.arange(60000.0, 60200.0, 1.0)
    flat = 1.0 + 0.01 * np.cos(np.arange(t.size) * 2.1)
    err = np.full(t.size, 0.01)
    assert DEFAULT_PARAMS.edge_min_core > 4
    for k, pending in ((0, False), (1, True), (4, True), (6, False)):
        flux = flat.copy()
        flux[t.size - k :] = 0.6
        test = full_test(t, flux, err)
        assert test.found == [] and test.ingress_pending is pending, k


def test_false_alarm_lookup_matches_the_table_and_is_monotone() -> None:
    # Rows themselves: dip at 1.0 -> 0.00358, ongoing at 0.8 -> 0.00158 (the ese-drw-3.4 table).
    assert false_alarm_probability(1.0, "dip") == pytest.approx(0.00358)
    assert false_alarm_probability(0.8, "ongoing") == pytest.approx(0.00158)
    # Half-way between dip rows 1.0 (0.00358) and 1.1 (0.00225): log-linear, the geometric
    # mean sqrt(0.00358 * 0.00225) = 0.0028382.
    assert false_alarm_probability(1.05, "dip") == pytest.approx(0.0028382, rel=1e-4)
    # Below the first row: 1; beyond the last row: the last row's value (a bound); bad: 1.
    assert false_alarm_probability(0.4, "dip") == 1.0
    assert false_alarm_probability(9.0, "dip") == pytest.approx(0.00025)
    assert false_alarm_probability(float("nan")) == 1.0
    for kind, table in NULL_TABLES.items():
        assert all(p1 < p0 for (_, p0), (_, p1) in itertools.pairwise(table)), kind
        grid = [false_alarm_probability(s, kind) for s in np.linspace(0.5, 3.0, 126)]
        assert all(b <= a for a, b in itertools.pairwise(grid)), kind


def test_survival_table_by_hand() -> None:
    # Highest null scores of 4 source-years: 0, 0.7, 1.2, 0.5.
    # >= 0.6: 2/4 = 0.5; >= 1.0: 1/4; >= 1.5: none -> 0.5/4 = 0.125; >= 2.0: none again,
    # kept strictly below the previous row: 0.125 * 0.999.
    rows = survival_table([0.0, 0.7, 1.2, 0.5], 4, (0.6, 1.0, 1.5, 2.0))
    assert [s for s, _ in rows] == [0.6, 1.0, 1.5, 2.0]
    assert [p for _, p in rows] == pytest.approx([0.5, 0.25, 0.125, 0.124875])


def test_any_kind_tables_by_hand() -> None:
    # 4 null source-years, highest live score per kind (0 = none), rows at 1.0 and 2.0:
    #   dip     0    1.5  2.5  0      T_dip:     >= 1: 2/4 = 0.5,  >= 2: 1/4 = 0.25
    #   ongoing 1.2  0    0    0      T_ongoing: >= 1: 1/4 = 0.25, >= 2: none, 0.5/4 = 0.125
    # Each source-year's q = min over kinds of T_k(its max), log-linear between rows:
    #   q0 = T_ongoing(1.2) = 0.25 * 0.5**0.2 = 0.217638; q1 = T_dip(1.5) = 0.5 * 0.5**0.5 =
    #   0.353553; q2 = T_dip(2.5) = 0.25 (beyond the last row); q3 = 1 (nothing).
    # G(p) = share of q <= p: dip rows p = 0.5 -> 3/4, 0.25 -> 2/4; ongoing rows
    # p = 0.25 -> 2/4, p = 0.125 -> none, 0.5/4 = 0.125.
    best = {"dip": [0.0, 1.5, 2.5, 0.0], "ongoing": [1.2, 0.0, 0.0, 0.0]}
    tables = any_kind_tables(best, 4, (1.0, 2.0))
    assert [s for s, _ in tables["dip"]] == [1.0, 2.0]
    assert [p for _, p in tables["dip"]] == pytest.approx([0.75, 0.5])
    assert [p for _, p in tables["ongoing"]] == pytest.approx([0.5, 0.125])
    # Any-kind is never below the kind's own survival function (it counts more events).
    assert lookup(survival_table(best["dip"], 4, (1.0, 2.0)), 1.0) == pytest.approx(0.5)


def test_live_lookup_reads_the_live_table() -> None:
    # A table of the same form as the live one: (1.0, 0.008), (1.5, 0.002). A row itself;
    # half-way: sqrt(0.008 * 0.002) = 0.004; a quarter of the way: 0.008 * 0.25**0.25 =
    # 0.0056569; below the floor: 1; beyond the last row: its value.
    table = ((1.0, 0.008), (1.5, 0.002))
    assert lookup(table, 1.5) == pytest.approx(0.002)
    assert lookup(table, 1.25) == pytest.approx(0.004)
    assert lookup(table, 1.125) == pytest.approx(0.0056569, rel=1e-4)
    assert lookup(table, 0.99) == 1.0 and lookup(table, 40.0) == pytest.approx(0.002)
    # The generated live tables: dips per red-noise stratum, one per one-sided kind, from
    # the job's score floor, strictly decreasing, read by the same lookup.
    assert sorted(LIVE_NULL_TABLES) == sorted(LIVE_KEYS)
    assert sorted(LIVE_KEYS) == ["dip/deep", "dip/quiet", "dip/red", "dip/strong", "egress", "ongoing"]
    rms_of = {"quiet": 0.0, "red": 0.02, "deep": 0.02, "strong": 0.06, "": 0.0}
    depth_of = {"deep": 0.5}
    for key, rows in LIVE_NULL_TABLES.items():
        kind, _, stratum = key.partition("/")
        assert rows[0][0] == LIVE_PARAMS.min_score, key
        assert all(p1 < p0 for (_, p0), (_, p1) in itertools.pairwise(rows)), key
        (s0, p0), (s1, p1) = rows[0], rows[1]
        at = (rms_of[stratum], depth_of.get(stratum, 0.1))
        mid = live_false_alarm_probability((s0 + s1) / 2, kind, *at)
        assert mid == pytest.approx(math.sqrt(p0 * p1)), key
        assert live_false_alarm_probability(s0 - 0.01, kind, *at) == 1.0
    assert live_false_alarm_probability(float("nan"), "ongoing") == 1.0


def test_the_live_stratum_is_the_fitted_red_noise_and_the_depth_in_its_units() -> None:
    # A dip: below 1 % rms the quiet table, from 4.5 % the strong one; between them the
    # deep one when the dip is >= 15 rms deep (ese-drw-3.7), else the red one; unknown
    # (NaN, infinite, not given): the red one. One-sided kinds: one table whatever the rms.
    assert (QUIET_RED_RMS, STRONG_RED_RMS, DEEP_RED_RATIO) == (0.01, 0.045, 15.0)
    assert live_key("dip", 0.0) == live_key("dip", 0.0099) == "dip/quiet"
    assert live_key("dip", 0.0, 0.9) == live_key("dip", 0.0099, 0.05) == "dip/quiet"
    assert live_key("dip", 0.01) == live_key("dip", 0.0449) == "dip/red"
    assert live_key("dip", 0.02, 0.2999) == live_key("dip", 0.0449, 0.6) == "dip/red"
    # 15 x 0.02 = 0.3 and 15 x 0.01 = 0.15: at the boundary, deep.
    assert (
        live_key("dip", 0.02, 0.3) == live_key("dip", 0.01, 0.15) == live_key("dip", 0.03, 0.9) == "dip/deep"
    )
    assert live_key("dip", 0.045) == live_key("dip", 0.3) == live_key("dip", 0.05, 0.9) == "dip/strong"
    assert live_key("dip", math.nan) == live_key("dip", math.inf) == "dip/red"
    assert (
        live_key("dip", math.nan, 0.9)
        == live_key("dip", math.inf, 0.9)
        == live_key("dip", 0.02, math.nan)
        == "dip/red"
    )
    assert live_key("egress", 0.003) == live_key("egress", 0.2, 0.9) == "egress"
    assert live_key("ongoing", 0.02, 0.9) == "ongoing"
    for score in (1.0, 1.45, 2.2):
        red = lookup(LIVE_NULL_TABLES["dip/red"], score)
        assert live_false_alarm_probability(score, "dip") == red
        assert live_false_alarm_probability(score, "dip", 0.02) == red
        assert live_false_alarm_probability(score, "dip", 0.002) == lookup(
            LIVE_NULL_TABLES["dip/quiet"], score
        )
        assert live_false_alarm_probability(score, "dip", 0.09) == lookup(
            LIVE_NULL_TABLES["dip/strong"], score
        )
        assert live_false_alarm_probability(score, "dip", 0.02, 0.4) == lookup(
            LIVE_NULL_TABLES["dip/deep"], score
        )
        for kind in ("ongoing", "egress"):
            one = lookup(LIVE_NULL_TABLES[kind], score)
            assert (
                live_false_alarm_probability(score, kind)
                == live_false_alarm_probability(score, kind, 0.0)
                == one
            )
    # The null's quiet, deep and strong-red dips are rarer than the red-stratum ones at
    # every score of the table: the red stratum is the conservative default.
    for other in ("dip/quiet", "dip/deep", "dip/strong"):
        assert all(
            q <= r
            for (_, q), (_, r) in zip(LIVE_NULL_TABLES[other], LIVE_NULL_TABLES["dip/red"], strict=True)
        )
    d = replace(_det(100, 140), score=1.6, red_rms=0.004)
    assert with_live_false_alarm_probability(d).false_alarm_probability == lookup(
        LIVE_NULL_TABLES["dip/quiet"], 1.6
    )
    for depth, table in ((0.3, "dip/deep"), (0.29, "dip/red")):  # the detection's own depth picks
        d = replace(_det(100, 140), score=1.6, red_rms=0.02, depth=depth)
        assert with_live_false_alarm_probability(d).false_alarm_probability == lookup(
            LIVE_NULL_TABLES[table], 1.6
        )


def test_live_candidates_carry_the_live_probability() -> None:
    # The tracker rates what the full test and the refit report by the live table before
    # the phases are applied; the detector's one-look value is replaced. The same event
    # found as strongly on the earlier curve: the score is unchanged.
    d = replace(_det(100, 140), score=1.6, false_alarm_probability=1e-4)
    before = Earlier(lambda: [d, replace(d, kind="ongoing")], lambda c: replace(c, score=2.5))
    (rated,) = live_rated([d], before)
    assert rated.false_alarm_probability == pytest.approx(live_false_alarm_probability(1.6, "dip", 0.0))
    assert with_live_false_alarm_probability(d) == rated
    refit = live_refit(lambda c: replace(c, score=2.0), before)
    again = refit(d)
    assert again is not None
    assert again.false_alarm_probability == pytest.approx(live_false_alarm_probability(2.0, "dip", 0.0))
    cands: list[Candidate] = []
    transition(cands, live_rated([replace(d, kind="ongoing")], before), 130)
    assert cands[0].detection.false_alarm_probability == live_false_alarm_probability(1.6, "ongoing", 0.0)


def test_persistence_by_hand() -> None:
    # ese-drw-3.5: a look's detection counts only if the same event was there on the curve
    # PERSIST_DAYS earlier; its score is the lesser of the two looks'.
    d = replace(_det(100, 140), score=2.4)
    nothing = Earlier(list, lambda c: None)
    assert persisted(d, nothing) is None  # found once: no candidate, no alert
    assert live_rated([d], nothing) == []
    # Found earlier, overlapping, same kind, at 1.9 (and a weaker one at 1.2): 2.4 -> 1.9.
    seen = Earlier(
        lambda: [replace(_det(90, 130), score=1.9), replace(_det(95, 125), score=1.2)], nothing.refit
    )
    kept = persisted(d, seen)
    assert kept is not None and kept.score == pytest.approx(1.9)
    (rated,) = live_rated([d], seen)
    assert rated.score == pytest.approx(1.9)
    assert rated.false_alarm_probability == pytest.approx(live_false_alarm_probability(1.9, "dip", 0.0))
    # A weaker look now (1.5 < 1.9): the lesser is the current one.
    kept = persisted(replace(d, score=1.5), seen)
    assert kept is not None and kept.score == pytest.approx(1.5)
    # Earlier detections that do not overlap (ends at 99 < 100) or are of another kind do not count.
    apart = Earlier(
        lambda: [replace(_det(60, 99), score=3.0), replace(_det(100, 140, "ongoing"), score=3.0)],
        nothing.refit,
    )
    assert persisted(d, apart) is None
    # Not found by the earlier search: its own dip re-tested there at its (t0, W) (1.3),
    # for a two-sided dip and for an ingress alike.
    refitted = Earlier(list, lambda c: replace(c, score=1.3))
    kept = persisted(d, refitted)
    assert kept is not None and kept.score == pytest.approx(1.3)
    kept = persisted(replace(d, kind="ongoing", score=1.2), refitted)
    assert kept is not None and (kept.kind, kept.score) == ("ongoing", pytest.approx(1.2))
    # Refits of a confirmed candidate: both looks stand -> the refit, scored by the lesser
    # and rated; neither -> None (reject); one of the two -> the candidate as it was
    # (ese-drw-3.6: one look's verdict either way moves nothing).
    now = live_refit(lambda c: replace(c, score=2.2), refitted)(d)
    assert now is not None and now.score == pytest.approx(1.3)
    assert now.false_alarm_probability == pytest.approx(live_false_alarm_probability(1.3, "dip", 0.0))
    assert live_refit(lambda c: None, nothing)(d) is None
    assert live_refit(lambda c: replace(c, score=2.2), nothing)(d) is d
    assert live_refit(lambda c: None, refitted)(d) is d


def test_rejections_need_two_looks() -> None:
    # An ongoing dip whose flux shows no recovery: rejected only when the curve
    # PERSIST_DAYS earlier says so too; an earlier None or True leaves it undecided (None).
    d = _det(100, 140, "ongoing")
    stayed_low = Earlier(list, lambda c: None, lambda c: False)
    undecided = Earlier(list, lambda c: None, lambda c: None)
    recovering = Earlier(list, lambda c: None, lambda c: True)
    assert live_recovered(lambda c: False, stayed_low)(d) is False
    assert live_recovered(lambda c: False, undecided)(d) is None
    assert live_recovered(lambda c: False, recovering)(d) is None
    assert live_recovered(lambda c: True, stayed_low)(d) is True
    assert live_recovered(lambda c: None, stayed_low)(d) is None
    # Through the phases: a confirmed dip the search no longer finds, whose refit fails now
    # but stood 5 d earlier, stays confirmed and unchanged; failing on both, it is rejected.
    cands = [Candidate(replace(_det(100, 140), score=1.7), "confirmed", 150.0)]
    assert transition(cands, [], 200, refit=live_refit(lambda c: None, Earlier(list, lambda c: c))) == []
    assert cands[0].phase == "confirmed" and cands[0].detection.score == 1.7
    ((_, old, new),) = transition(
        cands, [], 205, refit=live_refit(lambda c: None, Earlier(list, lambda c: None))
    )
    assert (old, new) == ("confirmed", "rejected")


def test_a_candidate_found_once_does_not_alert_found_again_does() -> None:
    # Look 1 (day 130) finds an ongoing dip the curve of day 125 did not show: no candidate.
    # Look 2 (day 136) finds it again (score 1.2) and the curve of day 131 shows it (1.1):
    # a new ongoing candidate, alerted once, scored 1.1.
    d1 = replace(_det(120, 150, "ongoing"), score=1.4)
    d2 = replace(_det(122, 152, "ongoing"), score=1.2)
    cands: list[Candidate] = []
    assert transition(cands, live_rated([d1], Earlier(list, lambda c: None)), 130) == []
    assert cands == []
    earlier = Earlier(lambda: [replace(d1, score=1.1)], lambda c: None)
    ((cand, old, phase),) = transition(cands, live_rated([d2], earlier), 136)
    assert (old, phase, cand.first_alert_mjd) == (None, "ongoing", 136)
    assert cand.detection.score == pytest.approx(1.1)
    assert cand.detection.false_alarm_probability == live_false_alarm_probability(1.1, "ongoing")


def test_earlier_look_drops_the_last_persist_days(monkeypatch: pytest.MonkeyPatch) -> None:
    # Points on days 0..20, PERSIST_DAYS 5: the earlier curve is days 0..15 (16 points);
    # its search runs once, when first needed, and a refused curve gives [] / None.
    assert PERSIST_DAYS == 5.0
    seen: list[np.ndarray] = []

    def search(t: np.ndarray, y: np.ndarray, e: np.ndarray, params: object) -> list[EseDetection]:
        seen.append(t)
        return []

    monkeypatch.setattr(ese_tracker, "detect_all", search)
    t = np.arange(21.0)
    earlier = earlier_look(t, np.ones(21), np.full(21, 0.01))
    assert seen == []
    assert earlier.found == [] and earlier.found == []
    assert len(seen) == 1 and seen[0].tolist() == list(range(16))
    # One image a transit (ese-drw-3.10): 5 transits before the last image is 4.986 d, and
    # that image (where the look 5 transits ago saw the event) is in the earlier curve.
    sidereal = np.arange(21.0) * SIDEREAL_DAY
    assert earlier_look(sidereal, np.ones(21), np.full(21, 0.01)).found == []
    assert seen[1].tolist() == sidereal[:16].tolist()

    def refuse(*args: object) -> None:
        raise EseInputError("bad")

    monkeypatch.setattr(ese_tracker, "detect_all", refuse)
    monkeypatch.setattr(ese_edge, "refit", refuse)
    monkeypatch.setattr(ese_edge, "recovery_shown", refuse)
    refused = earlier_look(t, np.ones(21), np.full(21, 0.01))
    assert refused.found == [] and refused.refit(_det(1, 5)) is None
    assert refused.recovered(_det(1, 5, "ongoing")) is None


def _ingress_curve(days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image a transit; a 60 %-deep 14-d lens ingress whose minimum is on day 70."""
    rng = np.random.default_rng(6)
    t = 60000.0 + np.arange(days) * SIDEREAL_DAY
    flux = 1 - 0.6 * np.exp(-0.5 * ((t - t[70]) * 2.3548 / 14.0) ** 2) + 0.02 * rng.standard_normal(days)
    return t, flux, np.full(days, 0.02)


def test_the_persistence_look_reuses_the_last_looks_search_of_the_same_curve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A look on day 70 finds the ingress and asks for the look 5 transits later; there the
    # earlier curve (points at least 5 transits older than the last) is exactly day 70's,
    # so its search is the memo's: no second detect_all, the same detections as one, the
    # same outcome of the look. Another curve, other parameters or no memo: it searches.
    first_curve, curve = _ingress_curve(71), _ingress_curve(76)
    first = full_test(*first_curve)
    assert first.found and first.memo is not None
    assert first.memo.fingerprint == curve_fingerprint(*first_curve, LIVE_PARAMS)
    calls: list[int] = []

    def counted(*args: object, **kwargs: object) -> list[EseDetection]:
        calls.append(1)
        return ese_edge.detect_all(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ese_tracker, "detect_all", counted)
    assert earlier_look(*curve, previous=first.memo).found == list(first.found)
    assert calls == []
    searched = earlier_look(*curve).found
    assert len(calls) == 1 and searched == first.found
    # A memo of any other curve, parameters or code is not this search's: it searches.
    t, flux, err = first_curve
    one_flux, one_err, swapped = flux.copy(), err.copy(), [np.r_[x[1::-1], x[2:]] for x in first_curve]
    one_flux[40] += 1e-12
    one_err[10] *= 1.5
    others = [
        _ingress_curve(72),  # a look a day later
        (t, one_flux, err),
        (t, flux, one_err),
        tuple(swapped),
    ]
    for other in others:
        memo = full_test(*other).memo
        calls.clear()
        assert earlier_look(*curve, previous=memo).found == searched and len(calls) == 1
    strict = replace(LIVE_PARAMS, min_depth=0.7)  # deeper than the ingress: nothing found
    calls.clear()
    assert earlier_look(*curve, strict, previous=first.memo).found == [] and len(calls) == 1
    monkeypatch.setattr(ese_tracker, "DETECTOR_VERSION", "other code")
    calls.clear()
    assert earlier_look(*curve, previous=first.memo).found == searched and len(calls) == 1
    monkeypatch.undo()
    # The look itself: the same candidates with the memo (no search) as without (one).
    monkeypatch.setattr(ese_tracker, "detect_all", counted)
    found = full_test(*curve).found
    with_memo: list[Candidate] = []
    without: list[Candidate] = []
    calls.clear()
    look(with_memo, found, *curve, float(curve[0][-1]), previous=first.memo)
    assert calls == []
    look(without, found, *curve, float(curve[0][-1]))
    assert len(calls) == 1
    assert with_memo and with_memo == without


def test_a_look_memo_round_trips_exactly_and_refuses_text_it_did_not_write() -> None:
    memo = LookMemo("ab" * 20, (replace(_det(1, 5, "ongoing"), red_rms=float("nan"), cond_sigma=1 / 3),))
    again = LookMemo.from_json(memo.to_json())
    assert again is not None and again.fingerprint == memo.fingerprint
    assert again.found[0].cond_sigma == 1 / 3 and math.isnan(again.found[0].red_rms)
    assert replace(again.found[0], red_rms=0.0) == replace(memo.found[0], red_rms=0.0)
    # numpy scalars are written as floats; a field JSON cannot hold writes no memo.
    scalar = LookMemo("cd", (replace(_det(1, 5), score=np.float32(1.5)),))  # type: ignore[arg-type]
    back = LookMemo.from_json(scalar.to_json())
    assert back is not None and back.found[0].score == 1.5
    assert LookMemo("ef", (replace(_det(1, 5), kind=object()),)).to_json() is None  # type: ignore[arg-type]
    for text in (
        None,
        "",
        "{not json",
        "[]",
        '{"fingerprint": "x"}',
        '{"fingerprint": "x", "found": [{"a": 1}]}',
        '{"fingerprint": 1, "found": []}',
        "[" * 100_000,  # too deeply nested to parse
    ):
        assert LookMemo.from_json(text) is None, text


def _det(start: float, end: float, kind: str = "dip") -> EseDetection:
    return EseDetection(
        score=1.5, significance=10.0, start_mjd=start, end_mjd=end, center_mjd=(start + end) / 2,
        fwhm_days=end - start, depth=0.3, baseline_flux_jy=1.0, min_flux_jy=0.7, white_sigma=10.0,
        red_sigma=8.0, kind=kind,
    )  # fmt: skip


def test_phases_by_hand() -> None:
    # An end-cut detection opens an ongoing candidate; a two-sided one over it confirms it.
    cands: list[Candidate] = []
    assert [(old, new) for _, old, new in transition(cands, [_det(100, 140, "ongoing")], 130)] == [
        (None, "ongoing")
    ]
    assert [(old, new) for _, old, new in transition(cands, [_det(100, 150)], 200)] == [
        ("ongoing", "confirmed")
    ]
    # A later test on more data finds another event but nothing over this one: support
    # lost, rejected (and the other event is a new candidate).
    changes = [(old, new) for _, old, new in transition(cands, [_det(300, 320)], 400)]
    assert sorted(changes, key=str) == [("confirmed", "rejected"), (None, "confirmed")]
    # An ongoing candidate unmatched past end + 0.75 FWHM + 10 d (140 + 30 + 10 = 180) is rejected.
    other: list[Candidate] = []
    transition(other, [_det(100, 140, "ongoing")], 130)
    assert transition(other, [], 179.0) == []
    assert [(old, new) for _, old, new in transition(other, [], 181.0)] == [("ongoing", "rejected")]


def _rated_det(start: float, end: float, kind: str, score: float, fap: float | None) -> EseDetection:
    return replace(_det(start, end, kind), score=score, false_alarm_probability=fap)


def test_a_candidate_carries_the_lowest_false_alarm_probability_it_had() -> None:
    # ese-drw-3.8: the window, score and kind are the latest look's; the probability is the
    # lowest the candidate carried (the live table counts a steady source-year's most
    # extreme look). Every way a candidate's detection is replaced keeps it.
    cands: list[Candidate] = []
    transition(cands, [_rated_det(100, 140, "ongoing", 1.6, 1e-4)], 130)
    # An ongoing match with a weaker look: moved, the probability kept.
    transition(cands, [_rated_det(104, 146, "ongoing", 1.1, 0.004)], 136)
    d = cands[0].detection
    assert (d.start_mjd, d.score, d.false_alarm_probability) == (104, 1.1, 1e-4)
    # Confirmed by a weak two-sided dip: confirmed, still 1e-4.
    transition(cands, [_rated_det(100, 150, "dip", 1.05, 0.01)], 200)
    assert cands[0].phase == "confirmed" and cands[0].detection.kind == "dip"
    assert (cands[0].detection.score, cands[0].detection.false_alarm_probability) == (1.05, 1e-4)
    # A more extreme look lowers it; a refit (search finds nothing over it) keeps the lowest.
    transition(cands, [_rated_det(100, 150, "dip", 3.0, 3e-5)], 210)
    assert cands[0].detection.false_alarm_probability == 3e-5
    transition(cands, [], 220, refit=lambda d: replace(d, score=1.2, false_alarm_probability=0.006))
    assert (cands[0].detection.score, cands[0].detection.false_alarm_probability) == (1.2, 3e-5)
    # An unrated old row (None) takes the new look's probability; an unrated look keeps the old.
    old, rated = _rated_det(0, 10, "dip", 1.0, None), _rated_det(0, 10, "dip", 1.0, 0.002)
    assert carried(old, rated).false_alarm_probability == 0.002
    assert carried(rated, old).false_alarm_probability == 0.002
    assert carried(old, old).false_alarm_probability is None


def test_an_event_found_again_after_its_candidate_was_rejected_keeps_its_rating() -> None:
    # ese-drw-3.9: a new candidate over a rejected one's window carries the lowest probability
    # the rejected one had (the same event: the live table counts its most extreme look);
    # one elsewhere starts from its own.
    cands: list[Candidate] = []
    transition(cands, [_rated_det(100, 160, "egress", 2.0, 3e-5)], 120)
    transition(cands, [], 160, refit=lambda d: None)
    assert cands[0].phase == "rejected"
    changes = transition(
        cands, [_rated_det(110, 170, "egress", 1.03, 0.007), _rated_det(300, 330, "dip", 1.1, 0.004)], 352
    )
    new = {c.detection.start_mjd: c for c, old, _ in changes if old is None}
    assert new[110].phase == "confirmed" and new[110].detection.score == 1.03
    assert new[110].detection.false_alarm_probability == 3e-5
    assert new[300].detection.false_alarm_probability == 0.004
    assert cands[0].phase == "rejected"  # the rejected row stays what it was


def test_an_ongoing_candidate_that_does_not_recover_is_rejected_at_once() -> None:
    # Unmatched before its deadline (180): the recovery check decides; None and True wait.
    for verdict, phases in ((None, []), (True, []), (False, [("ongoing", "rejected")])):
        cands: list[Candidate] = []
        transition(cands, [_det(100, 140, "ongoing")], 130)
        changes = transition(cands, [], 150.0, lambda d, v=verdict: v)
        assert [(old, new) for _, old, new in changes] == phases
    # A matching end-edge detection keeps it ongoing whatever the check would say.
    kept: list[Candidate] = []
    transition(kept, [_det(100, 140, "ongoing")], 130)
    assert transition(kept, [_det(105, 145, "ongoing")], 150.0, lambda d: False) == []
    assert kept[0].phase == "ongoing"


def test_an_ingress_the_search_still_finds_is_not_rejected_for_no_recovery() -> None:
    # ese-drw-3.13: "no recovery" (False) on an ongoing dip [100, 140] is undecided (None)
    # while this look's search, persisted or not, finds an ongoing dip overlapping it; an
    # overlapping two-sided dip, an ingress elsewhere or no detection leave the verdict.
    d = _det(100, 140, "ongoing")
    no_recovery = still_coming_in(lambda c: False, [_det(110, 160, "ongoing")])
    assert no_recovery(d) is None
    assert still_coming_in(lambda c: False, [_det(110, 160)])(d) is False
    assert still_coming_in(lambda c: False, [_det(150, 190, "ongoing")])(d) is False
    assert still_coming_in(lambda c: False, [])(d) is False
    assert still_coming_in(lambda c: True, [_det(110, 160, "ongoing")])(d) is True
    # Through the phases: kept ongoing at 150, rejected at 160 when the search lost it.
    cands: list[Candidate] = []
    transition(cands, [d], 130)
    assert transition(cands, [], 150.0, no_recovery) == []
    ((_, old, new),) = transition(cands, [], 160.0, still_coming_in(lambda c: False, []))
    assert (old, new) == ("ongoing", "rejected")


def test_followed_candidates() -> None:
    # Ongoing: always; confirmed: until one FWHM + 60 d past the window's end (140 + 40 + 60).
    assert follows("ongoing", 140.0, 40.0, 1000.0)
    assert follows("confirmed", 140.0, 40.0, 240.0) and not follows("confirmed", 140.0, 40.0, 241.0)
    # Rejected: as confirmed (ese-drw-3.6: found again when its recovery completes).
    assert follows("rejected", 140.0, 40.0, 150.0) and not follows("rejected", 140.0, 40.0, 241.0)
