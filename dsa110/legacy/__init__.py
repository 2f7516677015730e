"""Import and follow the legacy DSA-110 pipeline's SQLite state files.

The running pipeline (dsa110/dsa110-contimg, legacy-pipeline-facts section 1) keeps its
state in ``ingest.sqlite3``, ``cal_registry.sqlite3``, ``products.sqlite3`` and the
catalog databases. :class:`~dsa110.legacy.runner.LegacyImporter` maps every table the
dashboard uses into our schema, one module per table family (``queue``,
``observations``, ``photometry``, ``candidates``, ``jobs``, ``products``, ``catalog``),
keyed by the legacy natural keys so that importing twice changes nothing, resumable from
per-table watermarks (``legacy_import_state``), and, following, publishing the events our
own writes publish. The files are only ever read (``mode=ro``), in short statements.
"""
