"""Which known source is at a position: photometry rows the pipeline left without a name.

The batch photometry job writes rows with ``source_id`` NULL whenever its follow-up
``UPDATE ... LIMIT`` fails (most SQLite builds; legacy-pipeline-facts section 1.3), and
older files have no ``source_id`` column at all. It measures at the coordinates it was
given (catalog positions), so such a row belongs to the known source within
``MATCH_RADIUS_ARCSEC`` of its position, the nearest if several; with none, it is a new
source named by its position (:func:`dsa110.legacy.values.source_name_at`).

Positions are unit vectors in a k-d tree (chord distance, exact for the separation cut);
sources added during the run are searched linearly until there are enough to rebuild.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

MATCH_RADIUS_ARCSEC: Final = 5.0
_CHORD: Final = 2.0 * math.sin(math.radians(MATCH_RADIUS_ARCSEC / 3600.0) / 2.0)
_REBUILD_AFTER: Final = 2000


def unit_vectors(ra_deg: NDArray[np.float64], dec_deg: NDArray[np.float64]) -> NDArray[np.float64]:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.column_stack((np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)))


class SkyIndex:
    def __init__(self, pks: list[int], ra_deg: list[float], dec_deg: list[float]) -> None:
        self._pks = np.asarray(pks, dtype=np.int64)
        self._tree = cKDTree(
            unit_vectors(np.asarray(ra_deg, float), np.asarray(dec_deg, float)).reshape(-1, 3)
        )
        self._extra_pks: list[int] = []
        self._extra_xyz: list[NDArray[np.float64]] = []

    def __len__(self) -> int:
        return int(self._pks.size) + len(self._extra_pks)

    def add(self, pk: int, ra_deg: float, dec_deg: float) -> None:
        self._extra_pks.append(pk)
        self._extra_xyz.append(unit_vectors(np.array([ra_deg]), np.array([dec_deg]))[0])
        if len(self._extra_pks) >= _REBUILD_AFTER:
            xyz = np.vstack([self._tree.data, np.asarray(self._extra_xyz)])
            self._pks = np.concatenate([self._pks, np.asarray(self._extra_pks, dtype=np.int64)])
            self._tree = cKDTree(xyz)
            self._extra_pks, self._extra_xyz = [], []

    def nearest(self, ra_deg: NDArray[np.float64], dec_deg: NDArray[np.float64]) -> list[int | None]:
        """The pk of the nearest known source within the radius of each position, else None."""
        xyz = unit_vectors(ra_deg, dec_deg)
        out: list[int | None] = [None] * len(xyz)
        best = np.full(len(xyz), np.inf)
        if self._pks.size:
            dist, index = self._tree.query(xyz, k=1, distance_upper_bound=_CHORD)
            for i, (d, j) in enumerate(zip(dist.tolist(), index.tolist(), strict=True)):
                if math.isfinite(d):
                    out[i], best[i] = int(self._pks[j]), d
        if self._extra_pks:
            extra = np.asarray(self._extra_xyz)
            for i in range(len(xyz)):
                d = np.linalg.norm(extra - xyz[i], axis=1)
                j = int(np.argmin(d))
                if d[j] <= _CHORD and d[j] < best[i]:
                    out[i], best[i] = self._extra_pks[j], float(d[j])
        return out
