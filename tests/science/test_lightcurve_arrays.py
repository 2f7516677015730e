"""The array corrections equal the per-image recipe (``refine_references``) on survey-like data."""

from __future__ import annotations

import numpy as np

from dsa110.science import lightcurve_arrays
from dsa110.science.lightcurve import PhotometryRow, reference_baselines, refine_references


def _survey(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    refs = list(range(100, 130))
    images = np.arange(1, 401)
    gain = 1.0 + rng.normal(0.0, 0.03, images.size)  # the shared calibration error per image
    level = rng.uniform(0.05, 2.0, len(refs))
    rows = []
    for j, pk in enumerate(refs):
        seen = rng.random(images.size) < (0.2 if j == 0 else 0.9)  # one reference barely seen
        wild = 0.3 if j in (3, 7) else 0.01  # two intrinsically variable references
        for i in np.flatnonzero(seen):
            rows.append((images[i], pk, level[j] * gain[i] * (1.0 + rng.normal(0.0, wild))))
    for i in images[
        ::50
    ]:  # images with too few references; then non-positive fluxes (stored fluxes are finite)
        rows = [r for r in rows if not (r[0] == i and r[1] > 101)]
    rows += [(8, 101, -0.1), (9, 102, 0.0), (10, 999, 1.0)]
    image = np.asarray([r[0] for r in rows], dtype=np.int64)
    source = np.asarray([r[1] for r in rows], dtype=np.int64)
    flux = np.asarray([r[2] for r in rows], dtype=np.float64)
    return image, source, flux, refs


def test_array_corrections_equal_the_per_image_recipe() -> None:
    for seed in (1, 2):
        image, source, flux, refs = _survey(seed)
        rows = [
            PhotometryRow(int(i), int(s), float(f), 0.01) for i, s, f in zip(image, source, flux, strict=True)
        ]
        _, want = refine_references(rows, reference_baselines(rows, refs))
        got = lightcurve_arrays.refined_corrections(
            image, source, flux, np.asarray(sorted(refs), dtype=np.int64)
        )
        assert set(got) == set(want)
        assert any(not c.corrected for c in want.values())
        for pk, c in want.items():
            g = got[pk]
            assert (g.corrected, g.n_references) == (c.corrected, c.n_references), pk
            assert abs(g.factor - c.factor) <= 1e-12 and abs(g.sigma - c.sigma) <= 1e-12, pk


def test_group_medians_match_numpy() -> None:
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 50, 2000)
    values = rng.normal(size=2000)
    k, med, n = lightcurve_arrays.group_medians(keys, values)
    for key, m, count in zip(k.tolist(), med.tolist(), n.tolist(), strict=True):
        assert m == np.median(values[keys == key]) and count == int(np.sum(keys == key))
