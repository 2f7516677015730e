"""New sources: first detected only after epochs sensitive enough to have seen them.

Definition: the VAST pipeline's (transient-pipelines section 1.3; VAST
``docs/design/newsources.md``, ``pipeline/new_sources.py``), adapted to what we store.
VAST calls a source *new* when its first detection is not in the earliest image covering
its position and ``new_high_sigma = f_peak(first detection) / min(rms at the position in
the earlier images where it was not detected) > new_sources.min_sigma`` (default 5).

What we store: every source is a catalog position measured by forced photometry on each
image that covers it, so the images that covered a source are the ones it has
measurements on, and each measurement's peak-flux error sigma is the noise at the
position (VAST's rms_i). With S/N = F / sigma (``peak_flux_jy / peak_flux_err_jy``):

- a *detection* is a measurement with S/N >= ``DETECTION_SNR`` (5);
- the *first detection* is at the earliest detection epoch t_d; its flux F_d is the peak
  flux of that detection (the largest, if several share t_d);
- the earlier non-detections are the measurements with t < t_d (all below 5 sigma, since
  t_d is the first detection);
- ``new_high_sigma = F_d / min(sigma_i, t_i < t_d)``: the significance the first
  detection would have had in the most sensitive earlier epoch. ``None`` when the source
  was never detected or was detected at its first epoch;
- ``new_source = new_high_sigma > NEW_SOURCE_MIN_SIGMA`` (5, VAST's default); never
  ``None``: a source with no earlier epochs or no detection is not new.

Not copied: VAST's code keeps the *highest* earlier rms (its bug #713), which stores the
lowest sigma; the documented quantity, the smallest rms, is used here. Not used: the
legacy DSA-110 route's definition (no ``cross_matches`` counterpart), because every
source here *is* a catalog entry, so it would call none of them (or, before a cross-match
is run, all of them) new.

Caveat, as in VAST: a faint source whose S/N wanders around 5 is "new" when the first
crossing follows quieter epochs with smaller errors; ``new_high_sigma`` is stored so that
a stricter cut can be applied.

Running form. The state is (t_d, F_d, m) with m = min sigma over measurements with
t < t_d (over all measurements while there is no detection). Folding a point (F, s, t):
a non-detection, or a detection after t_d, only lowers m (if t < t_d) or keeps F_d (a
detection at t_d); a detection before t_d becomes the first detection and m must shrink
to the points before t, which is the old m when every stored point is earlier than t,
``None`` when none is, and otherwise (a back-filled detection between stored epochs) one
indexed ``min()`` over the stored points before t that the caller supplies. Time-ordered
ingest never needs that read, and every step is a min or max, so the running state equals
the batch definition exactly under any ingest order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

DETECTION_SNR = 5.0
NEW_SOURCE_MIN_SIGMA = 5.0


@dataclass(frozen=True)
class FirstDetection:
    """The running state: the first detection and the best sensitivity before it."""

    mjd: float | None = None
    flux_jy: float | None = None
    prior_min_err_jy: float | None = None  # min sigma of points before `mjd` (all, when None)


def is_detection(flux: float, err: float) -> bool:
    return flux / err >= DETECTION_SNR


def needs_prior_min_err(
    state: FirstDetection,
    flux: float,
    err: float,
    mjd: float,
    stored_first_mjd: float | None,
    stored_last_mjd: float | None,
) -> bool:
    """Does folding this point need min sigma of the stored points before ``mjd``?

    Only for a detection that precedes the current first detection while stored points
    lie both before it and at or after it (``stored_*_mjd`` span the points already
    folded, not including this one).
    """
    becomes_first = is_detection(flux, err) and (state.mjd is None or mjd < state.mjd)
    return (
        becomes_first
        and stored_first_mjd is not None
        and stored_last_mjd is not None
        and stored_first_mjd < mjd <= stored_last_mjd
    )


def fold(
    state: FirstDetection,
    flux: float,
    err: float,
    mjd: float,
    stored_first_mjd: float | None,
    stored_last_mjd: float | None,
    prior_min_err_jy: float | None = None,
) -> FirstDetection:
    """The state after one more measurement (err > 0, all finite: the caller checks).

    ``prior_min_err_jy`` is min sigma over the stored points with t < ``mjd``; it is
    required exactly when :func:`needs_prior_min_err` says so and ignored otherwise.
    """
    if not is_detection(flux, err):
        if state.mjd is None or mjd < state.mjd:
            prior = err if state.prior_min_err_jy is None else min(state.prior_min_err_jy, err)
            return FirstDetection(state.mjd, state.flux_jy, prior)
        return state
    if state.mjd is not None and mjd > state.mjd:
        return state
    if state.mjd is not None and mjd == state.mjd:
        assert state.flux_jy is not None
        return FirstDetection(state.mjd, max(state.flux_jy, flux), state.prior_min_err_jy)
    if needs_prior_min_err(state, flux, err, mjd, stored_first_mjd, stored_last_mjd):
        if prior_min_err_jy is None:
            raise ValueError("prior_min_err_jy is required for a detection back-filled between stored epochs")
        return FirstDetection(mjd, flux, prior_min_err_jy)
    if stored_last_mjd is not None and stored_last_mjd < mjd:
        return FirstDetection(mjd, flux, state.prior_min_err_jy)  # every stored point is earlier
    return FirstDetection(mjd, flux, None)  # no stored point is earlier


def new_high_sigma(state: FirstDetection) -> float | None:
    if state.flux_jy is None or state.prior_min_err_jy is None:
        return None
    return state.flux_jy / state.prior_min_err_jy


def is_new_source(state: FirstDetection) -> bool:
    sigma = new_high_sigma(state)
    return sigma is not None and sigma > NEW_SOURCE_MIN_SIGMA


def first_detections_by_source(
    source: ArrayLike, mjd: ArrayLike, flux: ArrayLike, err: ArrayLike, n_sources: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(t_d, F_d, m) of every source at once, by the batch definition; NaN where ``None``.

    Inputs are validated by the caller (finite, err > 0), as for the other metrics.
    """
    src = np.asarray(source, dtype=np.int64)
    t, f, s = (np.asarray(x, dtype=np.float64) for x in (mjd, flux, err))
    detected = f / s >= DETECTION_SNR
    first = np.full(n_sources, np.inf)
    np.minimum.at(first, src[detected], t[detected])
    at_first = detected & (t == first[src])
    first_flux = np.full(n_sources, -np.inf)
    np.maximum.at(first_flux, src[at_first], f[at_first])
    before = t < first[src]  # every point of a source that was never detected
    prior = np.full(n_sources, np.inf)
    np.minimum.at(prior, src[before], s[before])
    return _nan_if_unset(first), _nan_if_unset(first_flux), _nan_if_unset(prior)


def _nan_if_unset(values: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.where(np.isfinite(values), values, np.nan)


def first_detection_of(flux: ArrayLike, err: ArrayLike, mjd: ArrayLike) -> FirstDetection:
    """The state of one source from its whole light curve (the recompute path)."""
    n = np.asarray(flux).size
    first, first_flux, prior = first_detections_by_source(np.zeros(n, np.int64), mjd, flux, err, 1)
    return FirstDetection(*(None if np.isnan(a[0]) else float(a[0]) for a in (first, first_flux, prior)))
