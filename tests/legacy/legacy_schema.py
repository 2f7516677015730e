"""The legacy pipeline's SQLite tables, column for column (legacy-pipeline-facts section 1).

Each table is its ``CREATE TABLE`` column list as the code at commit ``04470031``
declares it, plus the columns later ``ALTER TABLE`` migrations add. A fixture built with
``old=True`` leaves the ALTER columns out, as in files created by earlier versions that
the pipeline never migrated, and leaves out the tables that only exist because something
other than ``ensure_products_db`` created them (the unreachable-code quirk of section 1.3).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LegacyTable:
    name: str
    columns: tuple[str, ...]
    altered: tuple[str, ...] = ()  # "+ALTER" columns: absent from old files
    constraints: tuple[str, ...] = ()
    indices: tuple[str, ...] = ()
    created_lazily: bool = False  # absent from old products files (section 1.3 quirk)

    def ddl(self, old: bool) -> list[str]:
        cols = list(self.columns) + ([] if old else list(self.altered))
        body = ", ".join(cols + list(self.constraints))
        return [f"CREATE TABLE IF NOT EXISTS {self.name} ({body})", *self.indices]


@dataclass(frozen=True)
class LegacyDatabase:
    file: str
    tables: tuple[LegacyTable, ...] = field(default_factory=tuple)

    def create(self, conn: sqlite3.Connection, old: bool = False) -> None:
        for table in self.tables:
            if old and table.created_lazily:
                continue
            for statement in table.ddl(old):
                conn.execute(statement)

    def table(self, name: str) -> LegacyTable:
        return next(t for t in self.tables if t.name == name)


INGEST = LegacyDatabase(
    "ingest.sqlite3",
    (
        LegacyTable(
            "ingest_queue",
            (
                "group_id TEXT PRIMARY KEY",
                "state TEXT NOT NULL",
                "received_at REAL NOT NULL",
                "last_update REAL NOT NULL",
                "expected_subbands INTEGER",
                "retry_count INTEGER NOT NULL DEFAULT 0",
                "error TEXT",
                "checkpoint_path TEXT",
                "processing_stage TEXT DEFAULT 'collecting'",
                "chunk_minutes REAL",
            ),
            altered=("has_calibrator INTEGER DEFAULT NULL", "calibrators TEXT", "error_message TEXT"),
        ),
        LegacyTable(
            "subband_files",
            ("group_id TEXT NOT NULL", "subband_idx INTEGER NOT NULL", "path TEXT NOT NULL"),
            constraints=("PRIMARY KEY (group_id, subband_idx)",),
        ),
        LegacyTable(
            "performance_metrics",
            (
                "group_id TEXT NOT NULL",
                "load_time REAL",
                "phase_time REAL",
                "write_time REAL",
                "total_time REAL",
                "writer_type TEXT",
                "recorded_at REAL NOT NULL",
            ),
            constraints=("PRIMARY KEY (group_id)",),
        ),
    ),
)

REGISTRY = LegacyDatabase(
    "cal_registry.sqlite3",
    (
        LegacyTable(
            "caltables",
            (
                "id INTEGER PRIMARY KEY",
                "set_name TEXT NOT NULL",
                "path TEXT NOT NULL UNIQUE",
                "table_type TEXT NOT NULL",
                "order_index INTEGER NOT NULL",
                "cal_field TEXT",
                "refant TEXT",
                "created_at REAL NOT NULL",
                "valid_start_mjd REAL",
                "valid_end_mjd REAL",
                "status TEXT NOT NULL",
                "notes TEXT",
            ),
            altered=(
                "source_ms_path TEXT",
                "solver_command TEXT",
                "solver_version TEXT",
                "solver_params TEXT",
                "quality_metrics TEXT",
            ),
            indices=(
                "CREATE INDEX IF NOT EXISTS idx_caltables_set ON caltables(set_name)",
                "CREATE INDEX IF NOT EXISTS idx_caltables_valid ON caltables(valid_start_mjd, valid_end_mjd)",
            ),
        ),
    ),
)

_DATA_REGISTRY = LegacyTable(
    "data_registry",
    (
        "id INTEGER PRIMARY KEY AUTOINCREMENT",
        "data_type TEXT NOT NULL",
        "data_id TEXT NOT NULL UNIQUE",
        "base_path TEXT NOT NULL",
        "status TEXT NOT NULL DEFAULT 'staging'",
        "stage_path TEXT NOT NULL",
        "published_path TEXT",
        "created_at REAL NOT NULL",
        "staged_at REAL NOT NULL",
        "published_at REAL",
        "publish_mode TEXT",
        "metadata_json TEXT",
        "qa_status TEXT",
        "validation_status TEXT",
        "finalization_status TEXT DEFAULT 'pending'",
        "auto_publish_enabled INTEGER DEFAULT 1",
        "publish_attempts INTEGER DEFAULT 0",
        "publish_error TEXT",
    ),
    altered=("photometry_status TEXT DEFAULT NULL", "photometry_job_id TEXT DEFAULT NULL"),
    constraints=("UNIQUE(data_type, data_id)",),
)
_DATA_RELATIONSHIPS = LegacyTable(
    "data_relationships",
    (
        "id INTEGER PRIMARY KEY AUTOINCREMENT",
        "parent_data_id TEXT NOT NULL",
        "child_data_id TEXT NOT NULL",
        "relationship_type TEXT NOT NULL",
    ),
    constraints=("UNIQUE(parent_data_id, child_data_id, relationship_type)",),
)

PRODUCTS = LegacyDatabase(
    "products.sqlite3",
    (
        LegacyTable(
            "ms_index",
            (
                "path TEXT PRIMARY KEY",
                "start_mjd REAL",
                "end_mjd REAL",
                "mid_mjd REAL",
                "processed_at REAL",
                "status TEXT",
                "stage TEXT",
                "stage_updated_at REAL",
                "cal_applied INTEGER DEFAULT 0",
                "imagename TEXT",
                "ra_deg REAL",
                "dec_deg REAL",
            ),
            altered=("field_name TEXT", "pointing_ra_deg REAL", "pointing_dec_deg REAL"),
            indices=("CREATE INDEX IF NOT EXISTS idx_ms_index_stage_path ON ms_index(stage, path)",),
        ),
        LegacyTable(
            "images",
            (
                "id INTEGER PRIMARY KEY",
                "path TEXT NOT NULL",
                "ms_path TEXT NOT NULL",
                "created_at REAL NOT NULL",
                "type TEXT NOT NULL",
                "beam_major_arcsec REAL",
                "noise_jy REAL",
                "pbcor INTEGER DEFAULT 0",
            ),
            altered=(
                'format TEXT DEFAULT "fits"',
                "beam_minor_arcsec REAL",
                "beam_pa_deg REAL",
                "dynamic_range REAL",
                "field_name TEXT",
                "center_ra_deg REAL",
                "center_dec_deg REAL",
                "imsize_x INTEGER",
                "imsize_y INTEGER",
                "cellsize_arcsec REAL",
                "freq_ghz REAL",
                "bandwidth_mhz REAL",
                "integration_sec REAL",
            ),
            indices=("CREATE INDEX IF NOT EXISTS idx_images_ms_path ON images(ms_path)",),
        ),
        LegacyTable(
            "photometry",
            (
                "id INTEGER PRIMARY KEY",
                "image_path TEXT NOT NULL",
                "ra_deg REAL NOT NULL",
                "dec_deg REAL NOT NULL",
                "nvss_flux_mjy REAL",
                "peak_jyb REAL NOT NULL",
                "peak_err_jyb REAL",
                "measured_at REAL NOT NULL",
            ),
            altered=(
                "source_id TEXT",
                "snr REAL",
                "mjd REAL",
                "sep_from_center_deg REAL",
                "flags INTEGER DEFAULT 0",
            ),
            indices=("CREATE INDEX IF NOT EXISTS idx_photometry_image ON photometry(image_path)",),
        ),
        LegacyTable(
            "jobs",
            (
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "type TEXT NOT NULL",
                "status TEXT NOT NULL DEFAULT 'pending'",
                "ms_path TEXT NOT NULL",
                "params TEXT",
                "logs TEXT",
                "artifacts TEXT",
                "created_at REAL NOT NULL",
                "started_at REAL",
                "finished_at REAL",
            ),
        ),
        LegacyTable(
            "batch_jobs",
            (
                "id INTEGER PRIMARY KEY",
                "type TEXT NOT NULL",
                "created_at REAL NOT NULL",
                "status TEXT NOT NULL",
                "total_items INTEGER NOT NULL",
                "completed_items INTEGER DEFAULT 0",
                "failed_items INTEGER DEFAULT 0",
                "params TEXT",
            ),
            created_lazily=True,
        ),
        LegacyTable(
            "batch_job_items",
            (
                "id INTEGER PRIMARY KEY",
                "batch_id INTEGER NOT NULL",
                "ms_path TEXT NOT NULL",
                "job_id INTEGER",
                "status TEXT NOT NULL",
                "error TEXT",
                "started_at REAL",
                "completed_at REAL",
            ),
            altered=("data_id TEXT DEFAULT NULL",),
            constraints=("FOREIGN KEY (batch_id) REFERENCES batch_jobs(id)",),
            created_lazily=True,
        ),
        LegacyTable(
            "pointing_history",
            ("timestamp REAL PRIMARY KEY", "ra_deg REAL", "dec_deg REAL"),
            created_lazily=True,
        ),
        LegacyTable(
            "variability_stats",
            (
                "source_id TEXT PRIMARY KEY",
                "ra_deg REAL NOT NULL",
                "dec_deg REAL NOT NULL",
                "nvss_flux_mjy REAL",
                "n_obs INTEGER DEFAULT 0",
                "mean_flux_mjy REAL",
                "std_flux_mjy REAL",
                "min_flux_mjy REAL",
                "max_flux_mjy REAL",
                "chi2_nu REAL",
                "sigma_deviation REAL",
                "eta_metric REAL",
                "last_measured_at REAL",
                "last_mjd REAL",
                "updated_at REAL NOT NULL",
            ),
        ),
        LegacyTable(
            "ese_candidates",
            (
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "source_id TEXT NOT NULL",
                "flagged_at REAL NOT NULL",
                "flagged_by TEXT DEFAULT 'auto'",
                "significance REAL NOT NULL",
                "flag_type TEXT NOT NULL",
                "notes TEXT",
                "status TEXT DEFAULT 'active'",
                "investigated_at REAL",
                "dismissed_at REAL",
            ),
            constraints=("FOREIGN KEY (source_id) REFERENCES variability_stats(source_id)",),
        ),
        LegacyTable(
            "mosaics",
            (
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "path TEXT NOT NULL UNIQUE",
                "name TEXT NOT NULL",
                "created_at REAL NOT NULL",
                "start_mjd REAL NOT NULL",
                "end_mjd REAL NOT NULL",
                "integration_sec REAL",
                "n_images INTEGER",
                "center_ra_deg REAL",
                "center_dec_deg REAL",
                "dec_min_deg REAL",
                "dec_max_deg REAL",
                "noise_jy REAL",
                "beam_major_arcsec REAL",
                "beam_minor_arcsec REAL",
                "beam_pa_deg REAL",
                "n_sources INTEGER",
                "thumbnail_path TEXT",
            ),
            # mosaic/cli.py adds these to the science schema when it runs there.
            altered=("status TEXT", "method TEXT", "tiles TEXT", "output_path TEXT", "metrics_path TEXT"),
        ),
        LegacyTable(
            "alert_history",
            (
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "source_id TEXT NOT NULL",
                "alert_type TEXT NOT NULL",
                "severity TEXT NOT NULL",
                "message TEXT NOT NULL",
                "sent_at REAL NOT NULL",
                "channel TEXT",
                "success INTEGER DEFAULT 1",
                "error_msg TEXT",
            ),
        ),
        LegacyTable(
            "qa_artifacts",
            (
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "group_id TEXT NOT NULL",
                "name TEXT NOT NULL",
                "path TEXT NOT NULL",
                "created_at REAL NOT NULL",
            ),
            constraints=("UNIQUE(group_id, name)",),
        ),
        _DATA_REGISTRY,
        _DATA_RELATIONSHIPS,
    ),
)

MASTER = LegacyDatabase(
    "catalogs/master_sources.sqlite3",
    (
        LegacyTable(
            "sources",
            (
                "source_id INTEGER PRIMARY KEY",
                "ra_deg REAL NOT NULL",
                "dec_deg REAL NOT NULL",
                "s_nvss REAL",
                "snr_nvss REAL",
                "s_vlass REAL",
                "alpha REAL",
                "resolved_flag INTEGER NOT NULL",
                "confusion_flag INTEGER NOT NULL",
            ),
            indices=("CREATE INDEX IF NOT EXISTS idx_sources_radec ON sources(ra_deg, dec_deg)",),
        ),
        LegacyTable("meta", ("key TEXT PRIMARY KEY", "value TEXT")),
    ),
)

ALL = (INGEST, REGISTRY, PRODUCTS, MASTER)
