"""A calibrated ESE score: false-alarm probability per steady source-year.

The detector's ``score`` is its margin over its thresholds (``dsa110.science.ese``): >= 1
for every candidate, one operating point, not comparable across kinds. This module maps it
to the probability that a *steady* source shows an event of that kind with at least that
score in one year of data:

    FAP_k(s) = P(max score of kind k over one steady source-year >= s)

How it is calibrated (``bench/ese_null.py``, the command in the table's comment):

1. simulate N steady source-years under the injection bench's noise model
   (``bench/ese_sim.py``: a year at 1-3 epochs per day with 8 % missed days and 3-5
   outages, per-image gain errors 2-5 % shared by the image's sources, 1 % residual
   systematic, thermal SNR log-uniform 5-200, and on a random third a damped random walk
   of rms 1-10 % and tau log-uniform 30-300 d); no ESE and no confuser is injected;
2. normalise them by differential photometry as ingest does;
3. run :func:`dsa110.science.ese_edge.detect_all` (the detector of record) with
   ``min_score`` lowered to 0.5 and keep each source-year's highest score per kind (0 when
   it has none);
4. FAP_k(s) at the table's scores = (number of source-years whose highest score of kind k
   is >= s) / N, made strictly non-increasing; a zero count is written as 0.5 / N (it says
   "below 1/N", not "never").

Lookup: log-linear interpolation between rows; 1 below the first row (scores the detector
does not emit); beyond the last row, the last row's value (an upper bound: the null
simulation cannot measure rarer events, and no extrapolation is made). So the resolution is
1/N: with N = 12000, FAP ~4e-5 is the smallest value reported.

What it is not: a measurement on the telescope's own steady sources. It is as good as the
noise model; a deployment should rerun the calibration with its own cadence and errors (or
on real steady sources) and paste the new table. Users choose their trade-off by filtering on
``falseAlarmProbability`` (GraphQL ``maxFalseAlarm``) / ``false_alarm_probability`` (REST):
e.g. <= 1e-3 expects about one false candidate per 1000 steady source-years.

Two calibrations, because the same score means different things in the two ways the
detector runs:

* **one look** (``NULL_TABLES``, :func:`false_alarm_probability`): ``detect_all`` once on
  a whole year, as above; the one-pass detector (``detect_all``, ``detect_ese`` with
  ``force``) reports this.
* **live** (``LIVE_NULL_TABLES`` in ``dsa110.science.ese_live_null``,
  :func:`live_false_alarm_probability`): the ``ese-detect`` job runs the full test many
  times per source-year (``dsa110.science.ese_tracker``: 9-16 looks, each on the curve so
  far, plus the re-fits of confirmed candidates), so the chance that a steady source-year
  shows a candidate of a given score at *some* look is higher than at one look (the
  look-elsewhere effect in time: with 3.3 and one-look FAP <= 0.002, 0.0044-0.0178 false
  alarms per steady source-year were measured live). The live table is made by replaying
  simulated steady source-years through the tracker exactly as the job runs it
  (``bench/ese_replay.py``, the job's ``LIVE_PARAMS``) and recording, per source-year and
  kind, the highest score any of its candidates carried at any look:

      FAP_live(s, k) = G(T_k(s)),  T_k(s) = P(max over looks of kind-k scores >= s),
      G(p) = P(min over kinds k' of T_k'(max score of kind k') <= p)

  T_k is the per-kind survival function (step 4 above, on the live maxima); G converts a
  per-kind tail probability into the probability that a steady source-year produces a
  candidate of *any* kind at least as extreme in its own kind's terms (the min-p
  calibration): three kinds each calibrated to p would otherwise add up to as much as 3p
  false alarms per source-year at a cap of p. The same lookup (log-linear between rows, 1
  below the first row, the last row's value beyond it) reads it. So a live candidate with
  ``falseAlarmProbability`` <= p is expected on about p of steady source-years *ever*,
  counting every candidate the job opened during the year (those it later rejected
  included).

Strata (live tables, ese-drw-3.6): for two-sided dips, k above runs over three strata set
by the candidate's ``red_rms``, the DRW rms that best explains the curve with the dip
modelled (``dsa110.science.ese.DrwFit``): ``dip/quiet`` below ``QUIET_RED_RMS`` (1 %),
``dip/red`` from 1 % to ``STRONG_RED_RMS`` (4.5 %), ``dip/strong`` above; ``ongoing`` and
``egress`` keep one table each (``LIVE_KEYS``). Why: the null's false alarms are red-noise
wanders of a particular size. One look at 4,000 steady source-years (seeds 101+,
``min_score`` 0.7): 0 of 2,664 sources without red noise had a candidate, 152 of 1,336
with it did, while the dips injected on quiet sources (seeds 21, 31) fitted a median
0.6 %. Live (the 8,000 source-years of the 3.6 table), dips at score >= 1: 1 source-year in
the quiet stratum, 20 in the 1-4.5 % one, 0 above: a wander large enough to look like a
lens dip and not so large that the red-noise test already discounts it. One dip table
made every dip clear the threshold those wanders set (score 2.4 at FAP 0.002 with the
3.6 tracker); now a quiet or strongly red curve's dip is rated by a table they do not set.
The min-p transform G over the five tables keeps the any-table rate calibrated. Tried on
seeds 21, 31 and 41 only (the same replays re-rated by each table), recall at FAP <=
0.002: one dip table 0.883 / 0.833 / 0.789; quiet | red at 1 % 0.883 / 0.870 / 0.817; at
1 % and 2 % 0.874 / 0.880 / 0.835; at 1 % and 3 % 0.913 / 0.898 / 0.844; at 1 % and 4.5 %
0.913 / 0.907 / 0.853 (kept: best on all three, any-alert false alarms 9 / 7 / 7 of 2,725
against 8 / 7 / 7); stratifying the one-sided kinds too, or one boundary at 0.5 % or 2 %:
0.79-0.89. The one-sided kinds' null candidates are not concentrated in a stratum.

Depth in units of the red noise (ese-drw-3.7): the red stratum splits into ``dip/deep``
(depth >= ``DEEP_RED_RATIO`` = 15 times the fitted rms) and ``dip/red`` (shallower). A DRW
wander that passes for a dip is a few times its own rms deep; a lens's depth does not scale
with the source's red noise. In the live null (the first 8,000 source-years, seed 201),
the dips of the 1-4.5 % stratum at score >= 1.3 were 6.5-13 rms deep at every look but
one (14.9 at score 1.7); the injected lens dips (seed 41) that the red table rated were
mostly 15-40 rms deep, the shallowest 7-10. So the wanders stay in ``dip/red`` and set its
threshold (score ~2.1 at FAP 0.002), and a deep dip on a mildly red curve is rated by a
table they barely reach (FAP 0.00056 at score 1). The ratio was chosen among 12, 15 and
20 on seeds 21, 31 and 41 only, tabulated from those 8,000 source-years (the same replays
re-rated; no split: 0.893 / 0.907 / 0.862 recall at FAP <= 0.002; 12: 0.893 / 0.907 /
0.872; 15: 0.903 / 0.926 / 0.872; 20: 0.893 / 0.926 / 0.872).

The job without the one-look cap (ese-drw-3.8, ``ese_tracker.LIVE_PARAMS``): until 3.7 the
job's detector refused any candidate whose *one-look* probability exceeded 1e-3, a table
of all dips together whose 1e-3 sits at score ~1.36; so every live dip table was in effect
floored there, and a strongly red curve's dip at 1.0-1.36 (which no null source-year of that
stratum reaches) was never a candidate. Now every candidate from score 1 exists and is rated
here. The cost is in the min-p transform: the null has more candidates (200 of 16,000
source-years at some look, 3.7: 100), among them quiet and strongly red dips at 1.0-1.4, so
each table's any-kind probability at a score is higher than 3.7's (``dip/red`` reaches 0.002
at score ~2.25, 3.7: ~2.1; ``dip/quiet`` at ~1.4, 3.7: below 1). A candidate keeps the
lowest probability it has carried (``ese_tracker.carried``): the table counts a steady
source-year's most extreme look, so rating a candidate by its latest look only was stricter
than the calibration.

ese-drw-3.9 (the persistence look a find asks for always comes, ``ese_tracker.tested``):
211 of 16,000 null source-years with a candidate at some look (3.8: 200), 10.84 full tests
per source-year (3.8: 10.82); the tables moved by a few source-years (``dip/quiet`` at score
1.0: 0.0061 -> 0.0069; ``dip/red`` at 2.0: 0.0044 -> 0.0046).

From ese-drw-3.7 to 3.9 the live table pooled 16,000 steady source-years (two replays,
seeds 201 and 100201; 24,000 since 2026-12-05, "Out of sample" below). Why: across the five
seeds of the injection bench the steady source-years alerted at some look at a live FAP <= 0.002 were
40 of 13,625 (0.0029) with 3.6's table of 8,000, one and a half times the nominal rate; a
table point at FAP 0.002 rests on 16 source-years of 8,000, and its threshold moves with
their Poisson noise. Pooled, the same point rests on 32.

Out of sample (ese-drw-3.9, measured 2026-12-05). On the injection bench's steady
populations (seeds 21 and 31, ``--steady 2500``: 5,450 source-years, never part of a
table), rated by the table of the 16,000 source-years of runs A and B (seeds 201, 100201),
the share with a candidate at the cap at some look was nominal at 0.005 (29; 1.06 times
the cap) and above it below: 0.0040 at 0.002 (22; 2.1 times), 0.0031 at 0.001 (17). No
tabulation changed that (a finer score grid, (k + 1) / (n + 1) counts, a peaks-over-threshold
exponential tail past the last row with 10 null source-years, ``dip/deep`` folded back into
``dip/red``: 1.8-2.1 times at 0.002), and the strata the null populates least carried the
excess: ``dip/deep`` had 6 null source-years with a candidate at score >= 1 in 16,000, and
the 5,000 extra steady source-years of those populations had 5, all at >= 1.5 (0.6
expected). A third run of 8,000 (C, seed 200201)
rated the same populations at 1.2 times at 0.002 on its own: the 16,000 had been light in
the red strata, a table's tail resting on a few source-years. So the table now pools all
three, 24,000 source-years (``ese_live_null``), and rates those populations at 0.99 times
the cap at 0.005 (27), 1.65 at 0.002 (18; 95 % interval of the rate 0.0020-0.0052), 2.2 at
0.001 (12), 1.1 at 0.0005 (3); cross-validated on its own three runs (each rated by the
other two's table, ``bench/ese_null.py --cross-validate``): 1.04, 1.06, 1.46 and 1.17. A
fresh population run after the table was written (seed 41, ``--steady 2500``, replayed with
it): 0.0018 at 0.002 (5 of 2,725), 0.0048 at 0.005, 0.0011 at 0.001; pooled with the two
above, 0.0028 at 0.002 (23 of 8,175; 95 % interval 0.0018-0.0042). A
user who must receive at most p false alerts per steady source-year for p below 0.005
sets ``maxFalseAlarm`` lower: for 0.002, 0.0005 (0.0006 measured; 0.001 gave 0.0022). The next step
is more null source-years again, with the bench's populations kept out as the test.

ese-drw-3.10 (the tracker's waits counted in transits, ``ese_tracker.transits``): the
three runs replayed again and pooled (330 of 24,000 with a candidate at some look, 3.9:
322); cross-validated 1.04, 1.10, 1.38 and 1.33 times the cap at 0.005, 0.002, 0.001 and
0.0005. Seed 21's population (2,725 steady source-years, replayed after the table was
written): a candidate at the cap at some look 0.0051 at 0.005 (14), 0.0029 at 0.002 (8;
95 % interval 0.0013-0.0058), 0.0018 at 0.001 (5), 0.0011 at 0.0005 (3); final candidates
0.0004 at 0.002 (1). Made at the demo cadence (1-3 images a transit); on other cadences
(``bench/ese_null.py --cadence``, rated by this table) see that bench's docstring.

ese-drw-3.11 (the one-sided step test fits the lens with its caustic, ``ese_edge.lens_chi2``):
the three runs replayed again (1,086, 1,153 and 1,104 s CPU; 10.96-11.02 full tests per
source-year) and pooled: 331 of 24,000 with a candidate at some look (3.10: 330); the
cross-validation is unchanged, 1.04, 1.10, 1.38 and 1.33 times the cap. The one-look
table re-measured on its 12,000 source-years (same seeds) with 3.10 and with 3.11: every
row at score >= 1 identical between the two, the one-sided rows below 1 up to 1.2 times
with 3.11 (ongoing 0.0087 -> 0.0107 at 0.5, egress 0.0028 -> 0.0032 at 0.8). The committed
one-look table is 3.4's, and the re-measurement differs from it at score >= 1 in one row
by one source-year (egress at 1.0: 2 of 12,000, 1 then), so it is kept: the live path
reads it (``ese_edge.one_per_event``) and the live table was made with it.

ese-drw-3.12 (the tracker looks again ``PENDING_DAYS`` after a test whose ingress at the end
was refused for too little core, ``ese_tracker.ingress_pending``): the three runs replayed
again (1,281, 1,249 and 1,327 s CPU, six processes on 2 cores; 11.81-11.91 full tests per
source-year, 3.11: 10.96-11.02) and pooled: 336 of 24,000 with a candidate at some look
(3.11: 331); cross-validated 1.05, 1.15, 1.42 and 1.58 times the cap at 0.005, 0.002, 0.001
and 0.0005 (3.11: 1.04, 1.10, 1.38, 1.33; the lowest caps rest on 18-34 source-years). The
first 1,000 source-years of seed 201 replayed by 3.11 and by 3.12, both rated by the 3.11
table, have as many source-years with a candidate at each cap (6 / 3 / 2 / 1 at 0.005 /
0.002 / 0.001 / 0.0005): the extra looks did not make the null's dips more frequent there.
The one-look table is unchanged (so is the detector).

ese-drw-3.13 (an ongoing candidate whose ingress the look's own search still finds is not
rejected for "no recovery", ``ese_tracker.still_coming_in``; an ingress refused as a fade
before a trial refused for its core is looked at again soon, ``ese_tracker.ingress_pending``):
the three runs replayed again (1,246, 1,323 and 1,275 s CPU, three processes on 2 cores
beside three injection replays; 11.81, 11.91 and 11.88 full tests per source-year, as
3.12) and pooled: 335 of 24,000 with a candidate at some look (3.12: 336); cross-validated
1.03, 1.17, 1.42 and 1.58 times the cap at 0.005, 0.002, 0.001 and 0.0005 (3.12: 1.05, 1.15,
1.42, 1.58). Seed 21's population (2,725 steady source-years, replayed with 3.13): a
candidate at the cap at some look 0.0029 at 0.002 (8, as 3.12), final candidates 0.0004 (1).

ese-drw-3.15 (the physical lens family of 3.14, whose table was 3.13's, and the tracker's
new looks: the CUSUM's scale ignores points far above the baseline, and an ingress refused
for its shape after a pending look is looked at once more): the three runs replayed again
and a fourth added (seed 300201), 32,000 source-years (1,532, 1,481, 1,605 and 1,569 s CPU,
five processes on 2 cores; 11.92, 11.85, 11.96 and 12.06 full tests per source-year, 3.13:
11.81-11.91). The first three runs have 378 source-years with a candidate at some look
(3.13: 335): 3.14's lens family and 3.15's looks open more candidates at low scores, which
the table now counts; the fourth has 135. Cross-validated (each run rated by the table of
the other three, ``--cross-validate``): 1.03, 1.08, 1.25 and 1.06 times the cap at 0.005,
0.002, 0.001 and 0.0005 (3.13, three runs: 1.03, 1.17, 1.42, 1.58).

ese-drw-3.16 (the flare test for the Gaussian's one-sided trials, ``dsa110.science.ese_edge``):
the four runs replayed again, 32,000 source-years. Seeds 201 and 100201 took 3,675 and 3,540
s CPU with four processes on the 2 cores, seeds 200201 and 300201 1,841 and 1,870 s with two
(this machine's CPU time about doubles when more processes than cores run). Full tests per
source-year 11.92, 11.85, 11.96 and 12.06, to the hundredth 3.15's on the same seeds: a
refusal at the end of the data can change the tracker's looks (``ese_edge``, "Known cost"),
but not by as much as 0.01 a source-year here. 513 of 32,000 source-years had a candidate at
some look, as with 3.15. Cross-validated: 1.02, 1.08, 1.25 and 1.06 times the cap at 0.005,
0.002, 0.001 and 0.0005 (3.15: 1.03, 1.08, 1.25, 1.06). Seed 21's population (2,725 steady
source-years, replayed after the table was written): a candidate at the cap at some look
0.0044 at 0.005 (12), 0.0022 at 0.002 (6; 95 % interval 0.0008-0.0048), 0.0015 at 0.001
(4), 0.0007 at 0.0005 (2); final candidates 0.0004 at 0.002 (1), as with 3.15.

ese-drw-3.17 (a young lens floor refused as a flare is looked at again, ``ese_tracker``):
the four runs replayed again (1,839, 1,786, 1,921 and 1,899 s CPU, two processes on the 2
cores; 11.92, 11.85, 11.96 and 12.06 full tests per source-year, as 3.16's). 512 of 32,000
source-years had a candidate at some look (3.16: 513); of the first two runs' 16,000, 3
source-years' highest scores differ from 3.16's beyond float noise, all at live FAP above
0.01: the extra looks barely touch the null. The table differs from 3.16's in three
``dip/red`` rows at scores 1.0-1.5, in the fourth digit. Cross-validated: 1.02, 1.08, 1.25
and 1.06 times the cap, as 3.16's. Seed 21's population (2,725 steady source-years,
replayed after the table was written): at 0.002 a candidate at some look 0.0022 (6),
final candidates 0.0004 (1), as 3.16.

ese-drw-3.18 (the two-sided test's shape checks: the physical lens beside the Gaussian in the
short-dip test, the refined trial where an outage thins the core, ``dsa110.science.ese``): the
four runs replayed again; all 32,000 source-years' highest scores per look are 3.17's, so
the table is unchanged (only its header's version and CPU).

ese-drw-3.19 (the short-dip test's lens rival counts dips only): the four runs replayed
again (1,387, 1,312, 1,437 and 1,429 s CPU, two at a time); all 32,000 source-years' highest
scores per look are 3.18's, and so the table and its cross-validation (1.02, 1.08, 1.25, 1.06).

ese-drw-3.20 (the start of the data's flare rival sees the 200 d after the lens's window):
the four runs replayed again (916, 911, 987 and 971 s CPU, two at a time); 5 of the 32,000
source-years' egress looks (scores 1.0-1.1) moved to another trial, so the table's cells
moved in steps of 1/32,000 (17 cells, at most 4 steps); cross-validated 1.02, 1.09, 1.25,
1.06 (at 0.002: 66 in sample, 70 out of sample, 95 % CI 0.0017-0.0028 per source-year).

ese-drw-3.21 (3 d of core at the start of the data; one more look at a pending ingress
refused as a step): the four runs replayed again (1,047, 1,024, 1,152 and 1,122 s CPU, two
at a time; full tests per source-year as 3.20's); 14 of the 32,000 source-years' looks
differ, 11 in their highest score, so 15 of the table's cells moved by 1-3 steps of
1/32,000; cross-validated 1.02, 1.09, 1.25, 1.06 as 3.20's (at 0.002: 66 in sample, 70 out
of sample).

ese-drw-3.22 (a strong physical lens as the two-sided red-noise test's alternative, raising
S_red only): the four runs replayed again (1,220, 1,175, 1,346 and 1,309 s CPU, two at a
time beside other runs: +15-17 % on 3.21's, the lens search, at a heavier load than 3.21's;
full tests per source-year as 3.21's); 6 of the 32,000 source-years' looks differ, 3 in
their highest score (1.100 -> 1.105, 1.206 -> 1.185, and one that gained a candidate at
1.06: 514 source-years with one at some look), so 10 of the table's cells moved by 1-7 steps
of 1/32,000; cross-validated 1.02, 1.09, 1.25, 1.06 as 3.21's (at 0.002: 66 in sample, 70
out of sample).

ese-drw-3.23 (a trial whose core the data cover too thinly hides no neighbour): the four runs
replayed again (901, 896, 961 and 945 s CPU, two at a time on a quieter machine); every look
of the 32,000 source-years as 3.22's, so the table is 3.22's (514 source-years with a
candidate at some look; cross-validated as before).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import TYPE_CHECKING

from dsa110.science.ese_live_null import LIVE_NULL_TABLES

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from dsa110.science.ese import EseDetection

Table = tuple[tuple[float, float], ...]

# Generated by `python bench/ese_null.py --sources 12000 --seed 101` (detector ese-drw-3.4,
# floor min_score 0.5, uncapped; chunks of 500 sources at seeds 101, 1101, ..., 23101; 230 s
# CPU, 46 min wall on a shared 2-core machine at load average 10-13): (score, FAP per
# source-year) rows, score ascending, as printed, except: a row at 4.17e-05 is "no null
# source-year reached this score" (0.5 / 12000, a bound) and the printed rows after it are
# left out. 3.3 -> 3.4 changed only the ongoing rows (the fade test is the only change to
# detect_all's scores): fewer steady source-years end with an ongoing dip (score 0.5:
# 0.0117 -> 0.00792; 1.0: 0.00025 -> 0.000167); the dip and egress rows are identical.
# ese-drw-3.3's notes: the two-sided tail is heavier than 3.2's (score 1.0: 0.00358 vs
# 0.00258; 2.0: 2.5e-4 vs 8.3e-5): the refined trial fits red-noise wanders better too.
NULL_SOURCE_YEARS = 12000
NULL_TABLES: dict[str, Table] = {
    "dip": (
        (0.5, 0.0593),
        (0.6, 0.0419),
        (0.7, 0.0266),
        (0.8, 0.014),
        (0.9, 0.007),
        (1.0, 0.00358),
        (1.1, 0.00225),
        (1.2, 0.00192),
        (1.4, 0.000833),
        (1.7, 0.0005),
        (2.0, 0.00025),
    ),
    "ongoing": (
        (0.5, 0.00792),
        (0.6, 0.00525),
        (0.7, 0.00308),
        (0.8, 0.00158),
        (0.9, 0.000333),
        (1.0, 0.000167),
        (1.1, 8.33e-05),
        (1.2, 4.17e-05),
    ),
    "egress": (
        (0.5, 0.0154),
        (0.6, 0.0104),
        (0.7, 0.00558),
        (0.8, 0.00175),
        (0.9, 0.00075),
        (1.0, 8.33e-05),
        (1.1, 4.17e-05),
    ),
}


def false_alarm_probability(score: float, kind: str = "dip") -> float:
    """One-look FAP per steady source-year of an event of ``kind`` with at least ``score``.

    Log-linear interpolation in the null table (module docstring): between rows
    (s0, p0), (s1, p1), log FAP = log p0 + (s - s0) / (s1 - s0) * (log p1 - log p0);
    1 below the first row; the last row's value beyond it (a bound).
    """
    return lookup(NULL_TABLES.get(kind, NULL_TABLES["dip"]), score)


QUIET_RED_RMS = 0.01
STRONG_RED_RMS = 0.045
DEEP_RED_RATIO = 15.0
"""The live dip tables' strata (module docstring, "Strata"), in the red-noise rms a
two-sided dip's curve is fitted with (``EseDetection.red_rms``, a fraction of the
baseline): ``dip/quiet`` below 1 %, ``dip/strong`` from 4.5 %; between them ``dip/deep``
when the dip is at least ``DEEP_RED_RATIO`` times that rms deep, else ``dip/red``."""
LIVE_KEYS = ("dip/quiet", "dip/red", "dip/deep", "dip/strong", "ongoing", "egress")


def live_key(kind: str, red_rms: float, depth: float = math.nan) -> str:
    """The live table of a candidate: for a two-sided dip its stratum (red-noise rms, and
    depth in units of it), the kind itself for the one-sided ones. An unknown rms or depth
    (NaN: a row stored before the rms was) gets ``dip/red``, the stratum of the null's false
    alarms (the largest FAP)."""
    if kind != "dip":
        return kind
    if red_rms < QUIET_RED_RMS:
        return "dip/quiet"
    if STRONG_RED_RMS <= red_rms < math.inf:
        return "dip/strong"
    return "dip/deep" if depth >= DEEP_RED_RATIO * red_rms else "dip/red"


def live_false_alarm_probability(
    score: float, kind: str = "dip", red_rms: float = math.nan, depth: float = math.nan
) -> float:
    """Live FAP per steady source-year (the ``ese-detect`` job's many looks; module
    docstring): the same lookup in ``LIVE_NULL_TABLES``, in the table of ``kind`` and, for a
    dip, the stratum of ``red_rms`` and ``depth`` (``dip/red`` when not given: the larger FAP)."""
    return lookup(LIVE_NULL_TABLES.get(live_key(kind, red_rms, depth), LIVE_NULL_TABLES["dip/red"]), score)


def lookup(table: Table, score: float) -> float:
    """Log-linear interpolation in a (score, FAP) table (``false_alarm_probability``)."""
    if not math.isfinite(score) or score < table[0][0]:
        return 1.0
    for (s0, p0), (s1, p1) in itertools.pairwise(table):
        if score <= s1:
            frac = (score - s0) / (s1 - s0)
            return math.exp(math.log(p0) + frac * (math.log(p1) - math.log(p0)))
    return table[-1][1]


def survival_table(max_scores: Sequence[float], n_source_years: int, scores: tuple[float, ...]) -> Table:
    """Empirical FAP at ``scores`` from each null source-year's highest score (0 if none).

    FAP(s) = (count of max score >= s) / n; a zero count is reported as 0.5 / n (half an
    event: the table stays monotone and finite, and says "below 1/n", not "never").
    """
    rows = []
    for s in scores:
        hits = sum(1 for m in max_scores if m >= s)
        rows.append((s, max(hits, 0.5) / n_source_years))
    return _monotone(rows)


def any_kind_tables(
    max_scores: Mapping[str, Sequence[float]], n_source_years: int, scores: tuple[float, ...]
) -> dict[str, Table]:
    """Live tables FAP(s, k) = G(T_k(s)) from each null source-year's highest score per
    kind (module docstring): T_k = :func:`survival_table` of kind k; q_i = min over kinds of
    T_k(m_ik) (by :func:`lookup`, 1 below the first row); G(p) = (count of q_i <= p) / n,
    a zero count written as 0.5 / n and the rows made strictly non-increasing as there.
    """
    per_kind = {k: survival_table(m, n_source_years, scores) for k, m in max_scores.items()}
    kinds = list(per_kind)
    q = [min(lookup(per_kind[k], max_scores[k][i]) for k in kinds) for i in range(n_source_years)]
    out: dict[str, Table] = {}
    for k in kinds:
        rows = []
        for s, p in per_kind[k]:
            # A tolerance: q_i and p come from the same rows, through exp(log(.)).
            hits = sum(1 for v in q if v <= p * (1 + 1e-9))
            rows.append((s, max(hits, 0.5) / n_source_years))
        out[k] = _monotone(rows)
    return out


def _monotone(rows: list[tuple[float, float]]) -> Table:
    # Monotone non-increasing in score (ties at the floor are kept strictly decreasing).
    out: list[tuple[float, float]] = []
    for s, p in rows:
        out.append((s, out[-1][1] * 0.999 if out and p >= out[-1][1] else p))
    return tuple(out)


def with_false_alarm_probability(d: EseDetection) -> EseDetection:
    return replace(d, false_alarm_probability=false_alarm_probability(d.score, d.kind))


def with_live_false_alarm_probability(d: EseDetection) -> EseDetection:
    """``d`` rated by the live table (the ``ese-detect`` job's candidates)."""
    fap = live_false_alarm_probability(d.score, d.kind, d.red_rms, d.depth)
    return replace(d, false_alarm_probability=fap)
