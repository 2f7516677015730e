"""The ensemble corrections of :mod:`dsa110.science.lightcurve`, computed on arrays.

Same recipe, same numbers (``refine_references(rows, reference_baselines(rows, refs))``,
lightcurve module docstring steps 1-3 and its reference-stability rule, legacy-pipeline-facts
section 3.3), but every per-image and per-reference median is taken for all groups at once:
sort by (group, value) and average the two middle values of each group (the one middle
value twice for odd counts), which is what ``np.median`` computes for one group. A light
curve read used to call ``np.median`` a few times per image of the survey in Python; this
is a few array sorts whatever the number of images.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dsa110.science.lightcurve import CLIP_NSIGMA, MAD_TO_SIGMA, MIN_REFERENCES, NO_CORRECTION, Correction

Array = NDArray[np.float64]
Ints = NDArray[np.int64]


def group_medians(keys: Ints, values: Array) -> tuple[Ints, Array, Ints]:
    """(distinct keys, median of each key's values, count of each) - ``np.median`` per key."""
    if keys.size == 0:
        return keys, values, keys
    order = np.lexsort((values, keys))
    k, v = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    counts = np.diff(np.r_[starts, k.size])
    lo = starts + (counts - 1) // 2
    hi = starts + counts // 2
    return k[starts], (v[lo] + v[hi]) / 2.0, counts


def _lookup(keys: Ints, table_keys: Ints, table_values: Array, missing: float = np.nan) -> Array:
    """``table_values`` at each of ``keys`` (``missing`` where a key is not in ``table_keys``)."""
    out = np.full(keys.size, missing)
    if table_keys.size == 0:
        return out
    at = np.searchsorted(table_keys, keys).clip(0, table_keys.size - 1)
    found = table_keys[at] == keys
    out[found] = table_values[at[found]]
    return out


def baselines(source: Ints, flux: Array, reference_pks: Ints) -> tuple[Ints, Array]:
    """Step 1: each reference's median flux over its finite positive points (>= 3 of them)."""
    use = np.isin(source, reference_pks) & np.isfinite(flux) & (flux > 0)
    refs, med, n = group_medians(source[use], flux[use])
    keep = n >= MIN_REFERENCES
    return refs[keep], med[keep]


def _mad_sigma(groups: Ints, values: Array, centres_keys: Ints, centres: Array) -> Array:
    """1.4826 * median(|value - centre|) per group, aligned with ``centres_keys``."""
    dev = np.abs(values - _lookup(groups, centres_keys, centres))
    keys, med, _ = group_medians(groups, dev)
    return MAD_TO_SIGMA * _lookup(centres_keys, keys, med)


def image_corrections(
    image: Ints, source: Ints, flux: Array, base_keys: Ints, base: Array
) -> dict[int, Correction]:
    """Steps 2-3 for every image with at least one reference ratio (``ensemble_correction``)."""
    b = _lookup(source, base_keys, base)
    has = np.isfinite(b) & (b > 0)
    images_with_ratio = np.unique(image[has])
    ratio = flux[has] / b[has]
    img = image[has]
    ok = np.isfinite(ratio) & (ratio > 0)
    img, ratio = img[ok], ratio[ok]
    keys, c, n = group_medians(img, ratio)
    sigma = _mad_sigma(img, ratio, keys, c)
    # One clipping pass where sigma > 0 and at least MIN_REFERENCES survive, fewer than all.
    kept = np.abs(ratio - _lookup(img, keys, c)) < CLIP_NSIGMA * _lookup(img, keys, sigma)
    k_keys, _, k_n = group_medians(img[kept], ratio[kept])
    n_kept = _lookup(keys, k_keys, k_n.astype(np.float64), 0.0)
    redo = (sigma > 0) & (n_kept >= MIN_REFERENCES) & (n_kept < n)
    redo_rows = np.isin(img, keys[redo]) & kept
    r_keys, r_c, r_n = group_medians(img[redo_rows], ratio[redo_rows])
    r_sigma = _mad_sigma(img[redo_rows], ratio[redo_rows], r_keys, r_c)
    out: dict[int, Correction] = {int(pk): NO_CORRECTION for pk in images_with_ratio.tolist()}
    for pk, factor, s, count in zip(keys.tolist(), c.tolist(), sigma.tolist(), n.tolist(), strict=True):
        if count >= MIN_REFERENCES:
            out[pk] = Correction(factor=factor, sigma=s, n_references=count)
    for pk, factor, s, count in zip(
        r_keys.tolist(), r_c.tolist(), r_sigma.tolist(), r_n.tolist(), strict=True
    ):
        out[pk] = Correction(factor=factor, sigma=s, n_references=count)
    return out


def refined_corrections(
    image: Ints, source: Ints, flux: Array, reference_pks: Ints, max_excess: float = 3.0
) -> dict[int, Correction]:
    """``refine_references(rows, reference_baselines(rows, refs))[1]`` on arrays."""
    base_keys, base = baselines(source, flux, reference_pks)
    first = image_corrections(image, source, flux, base_keys, base)
    corrected = [pk for pk, c in first.items() if c.corrected]
    if corrected:
        cor_keys = np.asarray(sorted(corrected), dtype=np.int64)
        factors = np.asarray([first[int(pk)].factor for pk in cor_keys.tolist()])
    else:
        cor_keys, factors = np.empty(0, np.int64), np.empty(0)
    b = _lookup(source, base_keys, base)
    f_img = _lookup(image, cor_keys, factors)
    use = np.isfinite(b) & np.isfinite(f_img)
    residual = flux[use] / (f_img[use] * b[use]) - 1.0
    src = source[use]
    r_keys, r_med, r_n = group_medians(src, residual)
    scatter = _mad_sigma(src, residual, r_keys, r_med)
    enough = r_n >= MIN_REFERENCES
    s_keys, s_vals = r_keys[enough], scatter[enough]
    if s_keys.size < MIN_REFERENCES:
        return first
    typical = float(np.median(s_vals))
    ref_scatter = _lookup(base_keys, s_keys, s_vals, 0.0)
    keep = ref_scatter <= max_excess * typical
    return image_corrections(image, source, flux, base_keys[keep], base[keep])
