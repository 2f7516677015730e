"""What the legacy server's code answers for a set of state files: the REST fidelity oracle.

Each method reproduces, from the legacy SQLite files alone, the projection one legacy
route makes (legacy-pipeline-facts sections 2.2, 2.3 and 3.1: the queries, orderings,
defaults and field derivations of ``api/routes.py``, ``api/data_access.py`` and the
routers at commit ``04470031``), for the documented fields. It never looks at our
database, so comparing our REST answers with it tests the import and the REST layer
together. Values are normalised so that a deliberate improvement is not a mismatch:

- times are aware UTC datetimes (the legacy server printed naive local times; we print
  UTC with ``Z``: the instant is what is compared);
- every place where our answer *deliberately* differs from what the legacy code did is
  listed in :data:`DEVIATIONS` (route, field, why), and the oracle returns the corrected
  expectation there. Everything else must match field by field.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

UNIX_MJD = 40587.0

DEVIATIONS: tuple[tuple[str, str, str], ...] = (
    ("*", "*_at, time fields", "UTC with Z, not naive server-local time (facts 9.19); instants compared"),
    (
        "/status",
        "recent_groups order",
        "ISO strings in received_at sort by their time (SQLite sorted the text after every number) "
        "and are shown (fromtimestamp(str) made the legacy route fail)",
    ),
    (
        "/images, /products",
        "items",
        "one image per path (the legacy path was not unique: re-imaged rows merged)",
    ),
    (
        "/images",
        "beam_*, center_*",
        "filled from the FITS header when the file is there (known issue, facts 9)",
    ),
    ("/ms_index", "imagename", "the MS's image path, not the imaging root name"),
    ("/ms_index", "cal_applied", "a boolean, not 0/1"),
    ("/mosaics/*", "status", "the CLI's status (planned) when known; the legacy route always said completed"),
    (
        "/mosaics/*",
        "path, start_mjd, end_mjd of a planned row",
        "no 'PLANNED' placeholder and no MJD 0: the span of its tiles",
    ),
    (
        "/ese/candidates",
        "current_flux_jy",
        "the latest measured flux, not the stats' mean flux under that name",
    ),
    (
        "/ese/candidates",
        "first/last_detection_at",
        "the observation time of the first/last measurement, not when photometry ran",
    ),
    ("/data/{id}/lineage", "*", "served (the legacy route was shadowed by /data/{id:path}, facts 2.1)"),
    (
        "/sources/{id}/lightcurve",
        "flux_points",
        "rows without source_id belong by position; rows without an error are not points",
    ),
)


def when(value: Any) -> datetime | None:
    """A legacy time column as the legacy route meant it (epoch seconds; ISO tolerated)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        moment = datetime.fromisoformat(str(value))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def epochs(**columns: Any) -> dict[str, Any]:
    """Legacy time columns as epoch seconds under their names (None stays None), and as
    instants under ``<name>_iso``."""
    out: dict[str, Any] = {}
    for name, value in columns.items():
        moment = when(value)
        out[name] = moment.timestamp() if moment is not None else None
        out[f"{name}_iso"] = moment
    return out


def mjd_time(mjd: float) -> datetime:
    return datetime.fromtimestamp((mjd - UNIX_MJD) * 86400.0, UTC)


class LegacyOracle:
    def __init__(self, state_dir: Path, root: Path | None = None) -> None:
        self.state = state_dir
        self.root = PurePosixPath((root or state_dir.parent).as_posix())

    def _rows(self, file: str, sql: str, *params: Any) -> list[dict[str, Any]]:
        with sqlite3.connect(f"file:{self.state / file}?mode=ro", uri=True) as conn:
            conn.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in conn.execute(sql, params)]
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise

    def _path(self, value: str | None) -> str | None:
        if value is None:
            return None
        return value if value.startswith("/") else str(self.root / value)

    # -- GET /api/status ------------------------------------------------------------------

    def status(self, limit: int = 20) -> dict[str, Any]:
        queue = self._rows("ingest.sqlite3", "SELECT state, count(*) AS n FROM ingest_queue GROUP BY state")
        counts = {r["state"]: r["n"] for r in queue}
        present = {
            r["group_id"]: r["n"]
            for r in self._rows(
                "ingest.sqlite3", "SELECT group_id, count(*) AS n FROM subband_files GROUP BY group_id"
            )
        }
        groups = self._rows("ingest.sqlite3", "SELECT * FROM ingest_queue")
        groups.sort(key=lambda g: when(g["received_at"]) or datetime.min.replace(tzinfo=UTC), reverse=True)
        recent = [
            {
                "group_id": g["group_id"],
                "state": g["state"],
                "received_at": when(g["received_at"]),
                "last_update": when(g["last_update"]),
                "subbands_present": present.get(g["group_id"], 0),
                "expected_subbands": g["expected_subbands"],
                "has_calibrator": None if g.get("has_calibrator") is None else bool(g["has_calibrator"]),
                # null while not computed, as the legacy server sent it (issue 18 item 4).
                "matches": json.loads(g["calibrators"]) if g.get("calibrators") else None,
            }
            for g in groups[:limit]
        ]
        sets: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self._rows(
            "cal_registry.sqlite3", "SELECT * FROM caltables ORDER BY set_name, order_index"
        ):
            sets[row["set_name"]].append(row)
        calibration = {
            name: {
                "set_name": name,
                "tables": [r["path"] for r in rows],
                "active": sum(1 for r in rows if r["status"] == "active"),
                "total": len(rows),
            }
            for name, rows in sets.items()
        }
        return {
            "queue": {
                "total": sum(counts.values()),
                **{
                    s: counts.get(s, 0)
                    for s in ("pending", "in_progress", "failed", "completed", "collecting")
                },
            },
            "recent_groups": recent,
            "calibration_sets": calibration,
            "matched_recent": sum(1 for g in recent if g["has_calibrator"]),
        }

    # -- GET /api/ms_index -----------------------------------------------------------------

    def ms_index(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._rows(
            "products.sqlite3",
            "SELECT * FROM ms_index ORDER BY COALESCE(stage_updated_at, processed_at) DESC LIMIT ?",
            limit,
        )
        return [
            {
                "path": self._path(r["path"]),
                "start_mjd": r["start_mjd"],
                "end_mjd": r["end_mjd"],
                "mid_mjd": r["mid_mjd"],
                "processed_at": when(r["processed_at"]),
                "status": r["status"],
                "stage": r["stage"],
                "stage_updated_at": when(r["stage_updated_at"]),
                "cal_applied": bool(r["cal_applied"]),
            }
            for r in rows
        ]

    # -- GET /api/images, /api/images/{id}, /api/products ------------------------------------

    def _images(self) -> list[dict[str, Any]]:
        """Every image row, one per path (the latest row of a re-imaged path)."""
        rows = self._rows("products.sqlite3", "SELECT * FROM images ORDER BY id")
        by_path: dict[str, dict[str, Any]] = {}
        for r in rows:
            by_path.pop(r["path"], None)
            by_path[r["path"]] = r
        return list(by_path.values())

    def _image(self, r: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": r["id"],
            "path": self._path(r["path"]),
            "ms_path": self._path(r["ms_path"]),
            "created_at": when(r["created_at"]),
            "type": r["type"],
            "beam_major_arcsec": r["beam_major_arcsec"],
            "noise_jy": r["noise_jy"],
            "pbcor": bool(r["pbcor"]),
        }

    def images(
        self, limit: int = 100, offset: int = 0, image_type: str | None = None
    ) -> tuple[list[Any], int]:
        rows = [r for r in self._images() if image_type is None or r["type"] == image_type]
        rows.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        return [self._image(r) for r in rows[offset : offset + limit]], len(rows)

    def image(self, image_id: int) -> dict[str, Any] | None:
        return next((self._image(r) for r in self._images() if r["id"] == image_id), None)

    def products(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.images(limit=limit)[0]

    # -- /api/mosaics ----------------------------------------------------------------------

    def _mosaic(self, r: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": r["id"],
            "name": r["name"],
            "path": r["path"],
            "start_mjd": r["start_mjd"],
            "end_mjd": r["end_mjd"],
            "start_time": mjd_time(r["start_mjd"]),
            "end_time": mjd_time(r["end_mjd"]),
            "created_at": when(r["created_at"]),
            "image_count": r["n_images"],
            "noise_jy": r["noise_jy"],
            "source_count": r["n_sources"],
            "thumbnail_path": r["thumbnail_path"],
        }

    def mosaics(self, start_mjd: float, end_mjd: float) -> list[dict[str, Any]]:
        """``POST /mosaics/query``: overlap, or start inside the window (planned rows left out)."""
        rows = self._rows("products.sqlite3", "SELECT * FROM mosaics WHERE path != 'PLANNED'")
        hit = [
            r
            for r in rows
            if (r["start_mjd"] <= end_mjd and r["end_mjd"] >= start_mjd)
            or start_mjd <= r["start_mjd"] <= end_mjd
        ]
        return [self._mosaic(r) for r in hit]

    def mosaic(self, mosaic_id: int) -> dict[str, Any] | None:
        rows = self._rows(
            "products.sqlite3", "SELECT * FROM mosaics WHERE id = ? AND path != 'PLANNED'", mosaic_id
        )
        return self._mosaic(rows[0]) if rows else None

    # -- GET /api/ese/candidates -----------------------------------------------------------

    def ese_candidates(self, limit: int = 50, min_sigma: float = 5.0) -> list[dict[str, Any]]:
        rows = self._rows(
            "products.sqlite3",
            "SELECT e.*, v.ra_deg, v.dec_deg, v.sigma_deviation, v.nvss_flux_mjy, v.mean_flux_mjy "
            "FROM ese_candidates e LEFT JOIN variability_stats v ON v.source_id = e.source_id "
            "WHERE e.status = 'active' AND e.significance >= ? "
            "ORDER BY e.significance DESC, e.flagged_at DESC LIMIT ?",
            min_sigma,
            limit,
        )
        out = []
        for r in rows:
            mean = (r["mean_flux_mjy"] or 0.0) / 1000.0
            span = self._rows(
                "products.sqlite3",
                "SELECT min(mjd) AS first, max(mjd) AS last FROM photometry WHERE source_id = ? "
                "AND peak_err_jyb > 0",
                r["source_id"],
            )[0]
            out.append(
                {
                    "id": r["id"],
                    "source_id": r["source_id"],
                    "ra_deg": r["ra_deg"],
                    "dec_deg": r["dec_deg"],
                    "max_sigma_dev": r["sigma_deviation"]
                    if r["sigma_deviation"] is not None
                    else r["significance"],
                    "baseline_flux_jy": (r["nvss_flux_mjy"] / 1000.0) if r["nvss_flux_mjy"] else mean,
                    "status": r["status"],
                    "notes": r["notes"],
                    "first_detection_at": mjd_time(span["first"]) if span["first"] else when(r["flagged_at"]),
                    "last_detection_at": mjd_time(span["last"]) if span["last"] else when(r["flagged_at"]),
                }
            )
        return out

    # -- GET /api/pointing_history, /api/groups/{id}, /api/qa, /api/calibrator_matches -----------

    def pointing_history(self, start_mjd: float, end_mjd: float) -> list[dict[str, Any]]:
        return self._rows(
            "products.sqlite3",
            "SELECT timestamp, ra_deg, dec_deg FROM pointing_history WHERE timestamp BETWEEN ? AND ? "
            "ORDER BY timestamp",
            start_mjd,
            end_mjd,
        )

    def group(self, group_id: str) -> dict[str, Any] | None:
        rows = self._rows("ingest.sqlite3", "SELECT * FROM ingest_queue WHERE group_id = ?", group_id)
        if not rows:
            return None
        g = rows[0]
        present = self._rows(
            "ingest.sqlite3", "SELECT count(*) AS n FROM subband_files WHERE group_id = ?", group_id
        )
        qa = self._rows(
            "products.sqlite3",
            "SELECT group_id, name, path, created_at FROM qa_artifacts WHERE group_id = ?",
            group_id,
        )
        return {
            "group_id": g["group_id"],
            "state": g["state"],
            "received_at": when(g["received_at"]),
            "last_update": when(g["last_update"]),
            "subbands_present": present[0]["n"],
            "expected_subbands": g["expected_subbands"],
            "has_calibrator": None if g.get("has_calibrator") is None else bool(g["has_calibrator"]),
            "matches": json.loads(g["calibrators"]) if g.get("calibrators") else None,  # null: not computed
            "qa": sorted(
                ({**a, "path": self._path(a["path"]), "created_at": when(a["created_at"])} for a in qa),
                key=lambda a: a["name"],
            ),
        }

    def qa(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._rows("products.sqlite3", "SELECT group_id, name, path, created_at FROM qa_artifacts")
        items = [{**a, "path": self._path(a["path"]), "created_at": when(a["created_at"])} for a in rows]
        items.sort(key=lambda a: (a["created_at"], a["path"]), reverse=True)
        return items[:limit]

    def calibrator_matches(self, limit: int = 50) -> list[dict[str, Any]]:
        groups = self._rows("ingest.sqlite3", "SELECT * FROM ingest_queue")
        groups.sort(key=lambda g: when(g["received_at"]) or datetime.min.replace(tzinfo=UTC), reverse=True)
        return [
            {
                "group_id": g["group_id"],
                "matched": bool(g.get("has_calibrator")),
                "matches": [],
                "received_at": when(g["received_at"]),
                "last_update": when(g["last_update"]),
            }
            for g in groups[:limit]
        ]

    # -- /api/data ---------------------------------------------------------------------------

    def _product(self, r: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": r["data_id"],
            "data_type": r["data_type"],
            "status": r["status"],
            "stage_path": self._path(r["stage_path"]),
            "published_path": self._path(r["published_path"]),
            # The registry's REAL epochs, as list_data returned its rows (the data pages render
            # new Date(t * 1000)); the instants as ISO under *_iso, which the legacy rows lacked.
            **epochs(created_at=r["created_at"], published_at=r["published_at"]),
            "publish_mode": r["publish_mode"],
            "qa_status": r["qa_status"],
            "validation_status": r["validation_status"],
            "finalization_status": r["finalization_status"],
            "auto_publish_enabled": bool(r["auto_publish_enabled"]),
            "metadata": json.loads(r["metadata_json"]) if r["metadata_json"] else None,
        }

    def data(self, limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        rows = self._rows("products.sqlite3", "SELECT * FROM data_registry ORDER BY created_at DESC, data_id")
        return [self._product(r) for r in rows[offset : offset + limit]], len(rows)

    def data_item(self, data_id: str) -> dict[str, Any] | None:
        rows = self._rows("products.sqlite3", "SELECT * FROM data_registry WHERE data_id = ?", data_id)
        if not rows:
            return None
        return {**self._product(rows[0]), **epochs(staged_at=rows[0]["staged_at"])}

    def lineage(self, data_id: str) -> dict[str, dict[str, list[str]]]:
        """``{parents: {relationship_type: [data_id]}, children: {...}}`` as ``get_data_lineage`` grouped them."""
        out: dict[str, dict[str, list[str]]] = {"parents": {}, "children": {}}
        for side, own, other in (("parents", "child", "parent"), ("children", "parent", "child")):
            rows = self._rows(
                "products.sqlite3",
                f"SELECT {other}_data_id AS id, relationship_type AS rel FROM data_relationships "
                f"WHERE {own}_data_id = ?",
                data_id,
            )
            for r in rows:
                out[side].setdefault(r["rel"], []).append(r["id"])
        return {side: {rel: sorted(ids) for rel, ids in groups.items()} for side, groups in out.items()}

    # -- GET /api/sources/{id}/lightcurve -------------------------------------------------------

    def lightcurve(self, source_id: str) -> list[dict[str, Any]]:
        """Its photometry points, by source_id, with an error (see DEVIATIONS for the unnamed rows)."""
        rows = self._rows(
            "products.sqlite3",
            "SELECT mjd, measured_at, peak_jyb, peak_err_jyb, image_path FROM photometry "
            "WHERE source_id = ? AND peak_err_jyb > 0",
            source_id,
        )
        points = [
            {
                "mjd": r["mjd"] if r["mjd"] is not None else r["measured_at"] / 86400.0 + UNIX_MJD,
                "flux_jy": r["peak_jyb"],
                "flux_err_jy": r["peak_err_jyb"],
                "image_id": self._path(r["image_path"]),
            }
            for r in rows
        ]
        return sorted(points, key=lambda p: p["mjd"])
