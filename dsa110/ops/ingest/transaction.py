"""The ingest entry points: validate, write every image in one transaction, publish, queue detection."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110 import telemetry
from dsa110.db.norm_tables import bump_epoch
from dsa110.db.stats import analyze
from dsa110.db.writes import write_transaction
from dsa110.errors import BusyError
from dsa110.events.channels import MEASUREMENTS_ADDED
from dsa110.ops.ese_detect import enqueue_detection
from dsa110.ops.ingest.common import (
    MAX_ROWS_PER_INGEST,
    IngestError,
    IngestResult,
    MeasurementIn,
    Publish,
)
from dsa110.ops.ingest.image import SOURCE_COLUMNS, _ingest_one_image
from dsa110.ops.ingest.sqlite_indexes import rebuilt_source_indexes
from dsa110.ops.ingest.validation import _validate_rows
from dsa110.ops.maintenance import enqueue_maintenance
from dsa110.science.ese import DEFAULT_PARAMS, EseParams

logger = logging.getLogger(__name__)

BULK_WRITTEN: Final = ("sources", "measurements", "image_norm_factors", "norm_cells")
"""Tables a bulk ingest rewrites: its own, and the stored light-curve normalisation that the
``ese-detect`` job after every ingest refreshes (``dsa110.ops.norm_store``). Every light-curve
read joins the latter; analysed while still empty, PostgreSQL joined them by nested loop
(1.17 ms, 0.65 ms by hash join once analysed, at 10^5 sources): the next bulk ingest's
statistics refresh sees what the previous one's detection stored."""

ANALYZE_AFTER_ROWS = 10_000
"""A bulk load: refresh the planner's statistics afterwards and, on PostgreSQL, VACUUM.

Why VACUUM: an ingest rewrites the running sums of every source it measures, and each
rewritten row leaves its page not all-visible. Until a vacuum sets the visibility map again
PostgreSQL prices index-only scans as heap visits: a filtered source count (``nEpochsMin:
10, etaMin: 1``, 81,668 of 10^5 rows) went from a 7 ms index-only scan to a 61-130 ms
parallel sequential scan after one full ingest, on a server without autovacuum (and with
it, until autovacuum comes round). On PostgreSQL the ``VACUUM (ANALYZE)`` (1-3 s at 10^5
sources) runs in the coalesced ``db-maintain`` job (``dsa110.ops.maintenance``), not while
the caller waits; on SQLite the ``ANALYZE`` is bounded by ``PRAGMA analysis_limit``
(``dsa110.db.stats``) and stays inline.
"""


async def ingest_image_measurements(
    engine: AsyncEngine,
    image_pk: int,
    rows: Sequence[MeasurementIn | Mapping[str, Any]],
    *,
    publish: Publish | None = None,
    detect: bool = True,
    params: EseParams = DEFAULT_PARAMS,
) -> IngestResult:
    """Add an image's measurements, update their sources' metrics, optionally queue ESE detection.

    All-or-nothing: any invalid row, unknown source, or a source already measured on this
    image raises :class:`IngestError` (or :class:`NotFoundError` for the image) and nothing
    is written. Returns what was written and, with ``detect``, the id of the ``ese-detect``
    job the touched sources were queued on (``dsa110.ops.ese_detect``; ``params`` is kept
    for callers and unused: the job runs the default detector).
    """
    results = await ingest_images_measurements(
        engine, [(image_pk, rows)], publish=publish, detect=detect, params=params
    )
    return results[0]


@telemetry.observed(telemetry.INGEST_LATENCY)
async def ingest_images_measurements(
    engine: AsyncEngine,
    batches: Sequence[tuple[int, Sequence[MeasurementIn | Mapping[str, Any]]]],
    *,
    publish: Publish | None = None,
    detect: bool = True,
    params: EseParams = DEFAULT_PARAMS,
) -> list[IngestResult]:
    """Several images' measurements in one transaction (a backlog, a bench, a replay).

    Same rules as :func:`ingest_image_measurements`, applied to every image in the order
    given (each image's running updates see the ones before it); all-or-nothing over the
    whole batch. One commit instead of one per image is what makes replays fast. With
    ``detect``, the touched sources are queued once, after the commit, on the pending
    ``ese-detect`` job (detection runs off the request path); the job id is attached to the
    last result.
    """
    if isinstance(batches, str | bytes) or not isinstance(batches, Sequence):
        raise IngestError("batches must be a list of (image_pk, rows) pairs")
    parsed_batches: list[tuple[int, list[MeasurementIn]]] = []
    for item in batches:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise IngestError("each batch item must be an (image_pk, rows) pair")
        image_pk, rows = item
        if isinstance(image_pk, bool) or not isinstance(image_pk, int):
            raise IngestError("image_pk must be an integer")
        parsed_batches.append((image_pk, _validate_rows(rows)))
    if sum(len(p) for _, p in parsed_batches) > MAX_ROWS_PER_INGEST:
        raise IngestError(f"at most {MAX_ROWS_PER_INGEST} measurements per call")
    touched: list[list[int]] = []
    n_rows = sum(len(parsed) for _, parsed in parsed_batches)
    # SQLite: a batch rewriting most sources rebuilds their metric indexes once instead of
    # maintaining them row by row (dsa110.ops.ingest.sqlite_indexes).
    async with (
        write_transaction(engine) as conn,
        rebuilt_source_indexes(conn, n_rows, SOURCE_COLUMNS),
    ):
        for image_pk, parsed in parsed_batches:
            touched.append(await _ingest_one_image(conn, image_pk, parsed))
        # Stored light-curve normalisation (dsa110.ops.norm_store): stale from this commit on,
        # even where ids commit out of order (concurrent ingests on PostgreSQL).
        await bump_epoch(conn)
    telemetry.INGESTED_ROWS.inc(n_rows)
    if publish is not None:
        for (image_pk, parsed), pks in zip(parsed_batches, touched, strict=True):
            if pks:
                await MEASUREMENTS_ADDED.publish(
                    publish,
                    {"image_pk": image_pk, "n_measurements": len(parsed), "source_pks": pks[:1000]},
                )
    all_pks = sorted({pk for pks in touched for pk in pks})
    # --- ESE detection: queued after the commit, run by the ``ese-detect`` job ----------------
    del params  # the job runs the default detector
    job_id = await enqueue_detection(engine, all_pks, publish=publish) if detect and all_pks else None
    if n_rows >= ANALYZE_AFTER_ROWS:
        # Last, and best effort: the ingest has committed and its events and detection job are
        # out, so neither a cancelled request nor a busy lock here can lose them or turn a
        # committed ingest into an error (a client would retry it). Statistics are the
        # planner's advice; the next bulk load refreshes them again.
        try:
            if engine.dialect.name == "postgresql":
                await enqueue_maintenance(engine, BULK_WRITTEN, publish=publish)
            else:
                await analyze(engine, BULK_WRITTEN)
        except (SQLAlchemyError, BusyError) as exc:
            logger.warning("statistics refresh after ingest failed: %s", exc)
    return [
        IngestResult(
            image_pk=image_pk,
            n_measurements=len(parsed),
            source_pks=tuple(pks),
            detection_job_id=job_id if i == len(parsed_batches) - 1 else None,
        )
        for i, ((image_pk, parsed), pks) in enumerate(zip(parsed_batches, touched, strict=True))
    ]
