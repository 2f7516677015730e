"""The legacy dashboard's "ESE probability", as a heuristic score with its defects removed.

What it is: a hand-weighted sum of points, NOT a probability: it is calibrated against
nothing, and it is served as ``eseHeuristicScore`` (the REST ``ese_probability`` keeps
the legacy key). The evidence for an ESE is the detector's candidates
(``dsa110.science.ese``: shape tests and a likelihood-ratio test against the source's own
red noise); this score is kept because the legacy source page shows one number.

The legacy heuristic (legacy-pipeline-facts section 3.1, ``/api/legacy/sources/{id}``):
+0.4 if eta > 0.1 or V > 0.2, else +0.2 if eta > 0.05 or V > 0.1; +0.3 if chi2_nu > 3,
else +0.15 if chi2_nu > 2; +0.2 if the light curve's MJD span is 14-180 d; +0.1 if
std/mean > 0.3, else +0.05 if > 0.15; capped at 1, rounded to 2 decimals.

Here, in points of 0.01:

``amplitude``    40 if V > 0.2, else 20 if V > 0.1 (V = std/mean, ddof = 1).
``significance`` 30 if chi2_nu > 3, else 15 if chi2_nu > 2.
``timescale``    20 if the source has an ESE candidate that no person has rejected (status
                 other than ``false_positive`` and ``dismissed``) whose window
                 (``end_mjd - start_mjd``, the dip's FWHM) lasts 14-180 d.

score = (amplitude + significance + timescale) / 100, from 0 to 0.9; ``None`` for a source
with no measurement. A term whose input is undefined (V for a non-positive mean) scores 0.

Legacy defects not copied:

- eta in the first term: eta (w = 1/sigma**2) is about 1 for a source that is steady within
  its errors, so "eta > 0.1" held for nearly every source and gave all of them +0.4; and
  eta is the same number as chi2_nu (``dsa110.science.variability``), which the second term
  already tests. Only V remains in the first term.
- The timescale term tested the MJD span of the whole light curve, i.e. how long the
  source had been watched: every source scored +0.2 between 14 and 180 days of monitoring
  and lost it afterwards. The 14-180 d ESE timescale is a property of an event, so it is
  tested on the detector's event window.
- The last term, std/mean, is V again (counted twice); dropped, so the cap at 1 is moot.
- The router's copy lacked the chi2 and timescale terms; there is one definition here.
"""

from __future__ import annotations

from collections.abc import Iterable

ESE_TIMESCALE_DAYS = (14.0, 180.0)
REJECTED_STATUSES = frozenset({"false_positive", "dismissed"})


def ese_heuristic_score(
    v: float | None,
    chi2_nu: float | None,
    candidates: Iterable[tuple[str, float, float]],
    n_epochs: int,
) -> float | None:
    """The score above from a source's V, chi2_nu and candidates ``(status, start_mjd, end_mjd)``."""
    if n_epochs <= 0:
        return None
    points = 0
    if v is not None:
        points += 40 if v > 0.2 else 20 if v > 0.1 else 0
    if chi2_nu is not None:
        points += 30 if chi2_nu > 3.0 else 15 if chi2_nu > 2.0 else 0
    shortest, longest = ESE_TIMESCALE_DAYS
    if any(
        str(status) not in REJECTED_STATUSES and shortest <= end - start <= longest
        for status, start, end in candidates
    ):
        points += 20
    return points / 100.0
