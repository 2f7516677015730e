"""Every table of the pipeline state, as SQLAlchemy Core.

Core, not ORM: the graph reads rows in batches (one statement per DataLoader batch) and
never needs identity maps or lazy relations. Column names carry units. Indices exist for
every filter and sort the graph offers; the migration in ``dsa110/db/migrations`` is the
source of truth for existing databases and a test checks it matches this module.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from dsa110.db.types import UtcDateTime

metadata: MetaData = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# --- the sky -----------------------------------------------------------------------

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", String(64), nullable=False, unique=True),
    Column("ra_deg", Float, nullable=False),
    Column("dec_deg", Float, nullable=False),
    Column("healpix", BigInteger, nullable=False),
    Column("catalog_flux_jy", Float),
    # Variability metrics, kept current from running sums (dsa110.science.variability).
    Column("n_epochs", Integer, nullable=False, default=0),
    Column("sum_w", Float, nullable=False, default=0.0),
    Column("sum_wf", Float, nullable=False, default=0.0),
    Column("sum_wf2", Float, nullable=False, default=0.0),
    Column("sum_f", Float, nullable=False, default=0.0),
    Column("sum_f2", Float, nullable=False, default=0.0),
    Column("mean_flux_jy", Float),
    Column("min_flux_jy", Float),
    Column("max_flux_jy", Float),
    Column("v", Float),
    Column("eta", Float),
    Column("chi2_nu", Float),
    Column("sigma_deviation", Float),
    Column("vs_abs_max", Float),
    Column("m_abs_max", Float),
    Column("first_mjd", Float),
    Column("last_mjd", Float),
    Column("max_snr", Float),
    # New-source state and verdict (dsa110.science.newsource).
    Column("first_detection_mjd", Float),
    Column("first_detection_flux_jy", Float),
    Column("pre_detection_min_err_jy", Float),
    Column("new_high_sigma", Float),
    Column("new_source", Boolean, nullable=False, default=False, server_default="0"),
    Index(None, "healpix"),
    Index(None, "dec_deg"),
    Index(None, "ra_deg"),
    Index(None, "catalog_flux_jy"),
    Index(None, "mean_flux_jy", "n_epochs"),  # covering: metric >= x AND n_epochs >= k (0012)
    Index(None, "eta", "n_epochs"),  # covering: metric >= x AND n_epochs >= k (0012)
    Index(None, "v", "n_epochs"),  # covering: metric >= x AND n_epochs >= k (0012)
    Index(None, "chi2_nu", "n_epochs"),  # covering: metric >= x AND n_epochs >= k (0012)
    Index(None, "sigma_deviation", "n_epochs"),  # covering: metric >= x AND n_epochs >= k (0012)
    Index(None, "n_epochs"),
    Index(None, "last_mjd"),
    Index(None, "max_snr", "n_epochs"),  # covering: metric >= x AND n_epochs >= k (0012)
    Index(None, "new_source", "new_high_sigma"),
)

# PostgreSQL: the graph orders sources by these nullable columns ``DESC NULLS LAST, id DESC``
# (``dsa110.db.filters.Ordering``); an ascending btree scanned backwards yields ``NULLS FIRST``,
# so without an index declared in that order PostgreSQL sorted the whole table (issue 11).
# SQLite keeps NULLs lowest in its indexes, so a backward scan already matches (0015).
SOURCE_DESC_NULLS_LAST = (
    "catalog_flux_jy",
    "mean_flux_jy",
    "eta",
    "v",
    "chi2_nu",
    "sigma_deviation",
    "last_mjd",
    "max_snr",
)
for _name in SOURCE_DESC_NULLS_LAST:
    Index(
        f"ix_sources_{_name}_desc_nulls_last",
        sources.c[_name].desc().nulls_last(),
        sources.c.id.desc(),
    ).ddl_if(dialect="postgresql")

catalog_sources = Table(
    "catalog_sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("catalog", String(16), nullable=False),
    Column("name", String(64), nullable=False),
    Column("ra_deg", Float, nullable=False),
    Column("dec_deg", Float, nullable=False),
    Column("healpix", BigInteger, nullable=False),
    Column("flux_jy", Float),
    Column("flux_err_jy", Float),
    Column("major_arcsec", Float),
    Column("minor_arcsec", Float),
    Column("pa_deg", Float),
    UniqueConstraint("catalog", "name"),
    Index(None, "catalog", "healpix"),
    Index(None, "healpix"),
)

# --- observations --------------------------------------------------------------------

groups = Table(
    "groups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("group_id", String(32), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("mid_mjd", Float, nullable=False),
    Column("expected_subbands", Integer, nullable=False, default=16),
    Column("retry_count", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("has_calibrator", Boolean),
    Column("calibrators", JSON),
    Index(None, "state"),
    Index(None, "received_at"),
    Index(None, "mid_mjd"),
    Index(None, "updated_at"),
)

subband_files = Table(
    "subband_files",
    metadata,
    Column("group_pk", Integer, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("subband_idx", Integer, primary_key=True),
    Column("path", Text, nullable=False),
)

measurement_sets = Table(
    "measurement_sets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", Text, nullable=False, unique=True),
    Column("group_pk", Integer, ForeignKey("groups.id", ondelete="SET NULL")),
    Column("start_mjd", Float),
    Column("end_mjd", Float),
    Column("mid_mjd", Float),
    Column("status", String(16), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("cal_applied", Boolean, nullable=False, default=False),
    Column("field_name", String(64)),
    Column("ra_deg", Float),
    Column("dec_deg", Float),
    Column("created_at", UtcDateTime, nullable=False),
    Column("stage_updated_at", UtcDateTime),
    Column("size_bytes", BigInteger),
    Index(None, "group_pk"),
    Index(None, "status"),
    Index(None, "stage"),
    Index(None, "mid_mjd"),
)

cal_tables = Table(
    "cal_tables",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("set_name", String(64), nullable=False),
    Column("path", Text, nullable=False, unique=True),
    Column("table_type", String(8), nullable=False),
    Column("order_index", Integer, nullable=False),
    Column("cal_field", String(64)),
    Column("refant", String(16)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("valid_start_mjd", Float),
    Column("valid_end_mjd", Float),
    Column("status", String(16), nullable=False),
    Column("source_ms_pk", Integer, ForeignKey("measurement_sets.id", ondelete="SET NULL")),
    Column("notes", Text),
    Index(None, "set_name"),
    Index(None, "valid_start_mjd", "valid_end_mjd"),
    Index(None, "source_ms_pk"),
)

images = Table(
    "images",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", Text, nullable=False, unique=True),
    Column("type", String(16), nullable=False),
    Column("group_pk", Integer, ForeignKey("groups.id", ondelete="SET NULL")),
    Column("ms_pk", Integer, ForeignKey("measurement_sets.id", ondelete="SET NULL")),
    Column("created_at", UtcDateTime, nullable=False),
    Column("mid_mjd", Float, nullable=False),
    Column("beam_major_arcsec", Float),
    Column("beam_minor_arcsec", Float),
    Column("beam_pa_deg", Float),
    Column("noise_jy", Float),
    Column("dynamic_range", Float),
    Column("center_ra_deg", Float),
    Column("center_dec_deg", Float),
    Column("healpix", BigInteger),
    Column("imsize_x", Integer),
    Column("imsize_y", Integer),
    Column("cellsize_arcsec", Float),
    Column("freq_ghz", Float),
    Column("bandwidth_mhz", Float),
    Column("integration_sec", Float),
    Column("pbcor", Boolean, nullable=False, default=False),
    Column("n_measurements", Integer, nullable=False, default=0),
    Index(None, "group_pk"),
    Index(None, "ms_pk"),
    Index(None, "type"),
    Index(None, "created_at"),
    Index(None, "mid_mjd"),
    Index(None, "noise_jy"),
    Index(None, "center_dec_deg"),
    Index(None, "healpix"),
)

measurements = Table(
    "measurements",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_pk", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("image_pk", Integer, ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
    Column("mjd", Float, nullable=False),
    Column("ra_deg", Float, nullable=False),
    Column("dec_deg", Float, nullable=False),
    Column("peak_flux_jy", Float, nullable=False),
    Column("peak_flux_err_jy", Float, nullable=False),
    Column("int_flux_jy", Float),
    Column("int_flux_err_jy", Float),
    Column("local_rms_jy", Float),
    Column("snr", Float),
    Column("forced", Boolean, nullable=False, default=True),
    UniqueConstraint("source_pk", "image_pk"),
    Index(None, "source_pk", "mjd").ddl_if(dialect="sqlite"),  # + the rowid: covers (source_pk, mjd, id)
    Index(None, "image_pk"),
    Index(None, "mjd"),
)
# A source's measurements are numbered in (mjd, id) order from the index alone (the narrow
# window of loaders.pages). SQLite's index ends with the rowid, so it covers id already;
# PostgreSQL's needs it declared or visits one heap page per measurement (0018, issue 11).
Index(None, measurements.c.source_pk, measurements.c.mjd, measurements.c.id).ddl_if(dialect="postgresql")

mosaics = Table(
    "mosaics",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("path", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("start_mjd", Float, nullable=False),
    Column("end_mjd", Float, nullable=False),
    Column("noise_jy", Float),
    Column("beam_major_arcsec", Float),
    Column("beam_minor_arcsec", Float),
    Column("beam_pa_deg", Float),
    Column("center_ra_deg", Float),
    Column("center_dec_deg", Float),
    Column("n_images", Integer, nullable=False, default=0),
    Column("n_sources", Integer),
    Index(None, "start_mjd", "end_mjd"),
    Index(None, "created_at"),
    Index(None, "status"),
    Index(None, "noise_jy"),
    Index(None, "center_dec_deg"),
)

mosaic_images = Table(
    "mosaic_images",
    metadata,
    Column("mosaic_pk", Integer, ForeignKey("mosaics.id", ondelete="CASCADE"), primary_key=True),
    Column("image_pk", Integer, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Index(None, "image_pk"),
)

pointing_history = Table(
    "pointing_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("mjd", Float, nullable=False, unique=True),
    Column("ra_deg", Float, nullable=False),
    Column("dec_deg", Float, nullable=False),
)

# --- operations ----------------------------------------------------------------------

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("type", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("params", JSON, nullable=False),
    Column("group_pk", Integer, ForeignKey("groups.id", ondelete="SET NULL")),
    Column("ms_path", Text),
    Column("batch_id", Integer, ForeignKey("batches.id", ondelete="SET NULL")),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("error", Text),
    # -- the durable queue (dsa110.ops.queue) --------------------------------------------
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("max_attempts", Integer, nullable=False, default=1, server_default="1"),
    Column("progress", Float),
    Column("progress_message", Text),
    Column("result", JSON),
    Column("exit_code", Integer),
    Column("created_by", String(255)),
    Column("not_before", UtcDateTime),  # a retried job waits out its back-off
    Column("lease_owner", String(200)),  # the worker holding a running job; NULL otherwise
    Column("lease_expires_at", UtcDateTime),
    Column("heartbeat_at", UtcDateTime),
    Column("worker", String(200)),  # the worker of the latest attempt
    Column("executor", String(16)),
    Column("process_group", Integer),
    Column("cancel_requested_at", UtcDateTime),
    Column("cancel_requested_by", String(255)),
    Column("batch_item", Text),  # what this child of a batch works on (an MS path, a data id...)
    Index(None, "state"),
    Index(None, "type"),
    Index(None, "created_at"),
    Index(None, "group_pk"),
    Index(None, "started_at"),
    Index(None, "finished_at"),
    Index(None, "batch_id"),
)

batches = Table(
    "batches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("params", JSON, nullable=False),
    Column("n_items", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(255)),
    Column("cancelled_at", UtcDateTime),
    Column("cancelled_by", String(255)),
    Index(None, "created_at"),
    Index(None, "kind"),
)

services = Table(
    "services",
    metadata,
    # One row per supervised service (the streaming converter): what the operators asked
    # for (desired state, config, restart generation) and what the process last reported.
    Column("name", String(32), primary_key=True),
    Column("desired", String(16), nullable=False),
    Column("config", JSON, nullable=False),
    Column("config_version", Integer, nullable=False, default=0, server_default="0"),
    Column("generation", Integer, nullable=False, default=0, server_default="0"),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(255)),
    Column("pid", Integer),
    Column("host", String(255)),
    Column("started_at", UtcDateTime),
    Column("heartbeat_at", UtcDateTime),
    Column("running_generation", Integer),
    Column("metrics", JSON),
    Column("restarts", Integer, nullable=False, default=0, server_default="0"),
    Column("last_exit_code", Integer),
    Column("last_exit_at", UtcDateTime),
    Column("last_error", Text),
    Column("supervisor_at", UtcDateTime),  # a server supervising it said so then (every few seconds)
)

job_logs = Table(
    "job_logs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_pk", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("logged_at", UtcDateTime, nullable=False),
    Column("line", Text, nullable=False),
    Index(None, "job_pk", "id"),
)

data_products = Table(
    "data_products",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("data_id", String(512), nullable=False, unique=True),
    Column("data_type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("stage_path", Text, nullable=False),
    Column("published_path", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("staged_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime),
    Column("publish_mode", String(8)),
    Column("qa_status", String(16)),
    Column("validation_status", String(16)),
    Column("finalization_status", String(16), nullable=False, default="pending"),
    Column("auto_publish", Boolean, nullable=False, default=True),
    Column("publish_attempts", Integer, nullable=False, default=0),
    Column("publish_error", Text),
    Column("metadata", JSON),
    Column("image_pk", Integer, ForeignKey("images.id", ondelete="SET NULL")),
    Column("mosaic_pk", Integer, ForeignKey("mosaics.id", ondelete="SET NULL")),
    Column("ms_pk", Integer, ForeignKey("measurement_sets.id", ondelete="SET NULL")),
    Column("publish_failed_at", UtcDateTime),
    Column("caltable_pk", Integer, ForeignKey("cal_tables.id", ondelete="SET NULL")),
    Column("finalized_by", String(64)),
    Column("published_by", String(64)),
    Column("publish_claimed_at", UtcDateTime),
    Column("publish_target", Text),
    Index(None, "data_type", "status"),
    Index(None, "status"),
    Index(None, "published_at"),
    Index(None, "created_at"),
    Index(None, "publish_failed_at"),
    Index(None, "caltable_pk"),
    Index(None, "ms_pk"),
)

data_lineage = Table(
    "data_lineage",
    metadata,
    Column("parent_pk", Integer, ForeignKey("data_products.id", ondelete="CASCADE"), primary_key=True),
    Column("child_pk", Integer, ForeignKey("data_products.id", ondelete="CASCADE"), primary_key=True),
    Column("relationship", String(32), primary_key=True),
    Index(None, "child_pk"),
)

job_products = Table(
    "job_products",
    metadata,
    Column("job_pk", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("product_pk", Integer, ForeignKey("data_products.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(8), primary_key=True),  # "input" | "output"
    Index(None, "product_pk"),
)

qa_artifacts = Table(
    "qa_artifacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),  # plot | thumbnail | notebook | report
    Column("name", String(255), nullable=False),
    Column("path", Text, nullable=False, unique=True),
    Column("media_type", String(64), nullable=False),
    Column("size_bytes", BigInteger),
    Column("created_at", UtcDateTime, nullable=False),
    Column("group_pk", Integer, ForeignKey("groups.id", ondelete="SET NULL")),
    Column("ms_pk", Integer, ForeignKey("measurement_sets.id", ondelete="SET NULL")),
    Column("image_pk", Integer, ForeignKey("images.id", ondelete="SET NULL")),
    Column("caltable_pk", Integer, ForeignKey("cal_tables.id", ondelete="SET NULL")),
    Index(None, "group_pk"),
    Index(None, "ms_pk"),
    Index(None, "image_pk"),
    Index(None, "caltable_pk"),
    Index(None, "created_at"),
    Index(None, "kind"),
)

# --- science results -----------------------------------------------------------------

regions = Table(
    "regions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("type", String(16), nullable=False),
    Column("image_pk", Integer, ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
    Column("shape", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(64)),
    Column("updated_at", UtcDateTime),
    Index(None, "image_pk"),
    Index(None, "type"),
    # Clients act on a region by its id: on SQLite a deleted newest id must not be given to
    # the next region (revision 0026), or a late update or delete would hit that one.
    sqlite_autoincrement=True,
)

cross_matches = Table(
    "cross_matches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_pk", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("catalog_pk", Integer, ForeignKey("catalog_sources.id", ondelete="CASCADE"), nullable=False),
    Column("separation_arcsec", Float, nullable=False),
    UniqueConstraint("source_pk", "catalog_pk"),
    Index(None, "catalog_pk"),
)

external_catalog_cache = Table(
    "external_catalog_cache",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("service", String(16), nullable=False),
    Column("query_key", String(128), nullable=False),
    Column("fetched_at", UtcDateTime, nullable=False),
    Column("result", JSON, nullable=False),
    UniqueConstraint("service", "query_key"),
)

system_metrics = Table(
    "system_metrics",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sampled_at", UtcDateTime, nullable=False),
    Column("cpu_percent", Float, nullable=False),
    Column("memory_percent", Float, nullable=False),
    Column("memory_total_bytes", BigInteger, nullable=False),
    Column("memory_used_bytes", BigInteger, nullable=False),
    Column("load_1", Float),
    Column("load_5", Float),
    Column("load_15", Float),
    Column("disks", JSON, nullable=False),
    Column("host", String(255), nullable=False, server_default=""),
    Index(None, "sampled_at"),
    Index(None, "host", "sampled_at"),
)

# The rest of the tables live in modules of their own; importing them registers their tables
# with this metadata (last: they need `metadata`). The access and webhook tables are
# re-exported because much of the code imports them from here.
from dsa110.db import legacy_tables, norm_tables, ops_tables, row_counts  # noqa: E402,F401
from dsa110.db.access_tables import api_keys as api_keys  # noqa: E402,PLC0414
from dsa110.db.access_tables import audit_log as audit_log  # noqa: E402,PLC0414
from dsa110.db.ese_tables import alerts as alerts  # noqa: E402,PLC0414
from dsa110.db.ese_tables import ese_candidates as ese_candidates  # noqa: E402,PLC0414
from dsa110.db.ese_tables import ese_source_state as ese_source_state  # noqa: E402,PLC0414
from dsa110.db.ese_tables import ese_status_changes as ese_status_changes  # noqa: E402,PLC0414
from dsa110.db.webhook_tables import webhook_attempts as webhook_attempts  # noqa: E402,PLC0414
from dsa110.db.webhook_tables import webhook_cursors as webhook_cursors  # noqa: E402,PLC0414
from dsa110.db.webhook_tables import webhook_outbox as webhook_outbox  # noqa: E402,PLC0414
from dsa110.db.webhook_tables import webhook_subscriptions as webhook_subscriptions  # noqa: E402,PLC0414
