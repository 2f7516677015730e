"""The data-product lifecycle: staging -> (finalized) -> publishing -> published, with lineage.

Rules kept from the legacy registry (legacy-pipeline-facts §4.7), defects not kept:

* A product is registered ``staging`` with ``finalization_status`` ``pending`` and
  auto-publish on. Lineage edges point from parent (input) to child (product).
* ``finalize`` sets ``finalization_status = finalized`` and, when given, the QA
  (``pending|passed|failed|warning``) and validation (``pending|validated|invalid``)
  statuses. It then publishes automatically when the criteria hold: auto-publish enabled,
  validated, and - for images, mosaics, calibrated MS and calibration tables - QA passed.
* Publishing claims the product with one conditional UPDATE (``staging`` ->
  ``publishing``), which exactly one of several concurrent writers wins on SQLite and
  PostgreSQL alike; automatic publishing also needs fewer than 3 failed attempts. The
  files move from the staging area to ``<products>/<type dir>/`` atomically
  (:mod:`dsa110.ops.files.moves`). Success: ``published`` with the path, the time and the
  mode, attempts and error cleared. Failure: back to ``staging`` with the attempt counted,
  the error (500 characters) and its time recorded, files left where they were.
* A retry resets the attempt count and publishes again.
* A publisher killed outright (``kill -9``, out of memory, power) after its claim leaves
  the product ``publishing``, which every later publish refuses. The claim records its
  time (``publish_claimed_at``) and, before the move starts, the path the files are going
  to (``publish_target``); :func:`recover_publishing`, run by the queue workers' reaper
  loop as the job leases are, settles a product whose claim is older than
  ``Settings.publish_claim_timeout_s`` (longer than any move takes) by what is on disk,
  as the job reaper does with one conditional UPDATE on the old claim time (two sweepers
  settle it once). See that function for the cases.
* Outputs of a job that failed or was cancelled are ``partial`` (``finalization_status``,
  set by the job queue): they are neither finalized nor published, by hand or otherwise.
* ``finalized_by`` / ``published_by`` record the ``actor``: the identity of the request
  that finalized or published (an automatic publish is the finalizer's or retrier's); None
  when the pipeline itself acts.

Each change publishes a ``product.status`` event after its commit.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.enums import ProductStatus, ProductType
from dsa110.db.functions import insert_or_skip
from dsa110.db.tables import data_lineage, data_products
from dsa110.db.work import outside_work
from dsa110.db.writes import write_transaction
from dsa110.errors import ConflictError, InputError, NotFoundError
from dsa110.events import PRODUCT_STATUS, EventBusError
from dsa110.events.channels import ProductStatusPayload
from dsa110.ops.files.moves import MoveRefused, free_destination, move_product
from dsa110.ops.files.paths import under
from dsa110.settings import Settings

log = logging.getLogger("dsa110.products")

Publish = Callable[[str, dict[str, Any]], Awaitable[Any]]

MAX_AUTO_ATTEMPTS: Final = 3
MAX_ERROR_CHARS: Final = 500
QA_STATUSES: Final = ("pending", "passed", "failed", "warning")
VALIDATION_STATUSES: Final = ("pending", "validated", "invalid")
NEEDS_QA: Final = frozenset(
    {ProductType.IMAGE, ProductType.MOSAIC, ProductType.CALIB_MS, ProductType.CALTABLE}
)
TYPE_DIRS: Final = {
    ProductType.RAW: "raw",
    ProductType.MS: "ms",
    ProductType.CALIB_MS: "calib_ms",
    ProductType.CALTABLE: "caltables",
    ProductType.IMAGE: "images",
    ProductType.MOSAIC: "mosaics",
    ProductType.CATALOG: "catalogs",
    ProductType.QA: "qa",
    ProductType.METADATA: "metadata",
}
RELATIONSHIPS: Final = ("derived_from", "contains", "calibrated_with")
PARTIAL: Final = "partial"
"""``finalization_status`` of an output of a job that failed or was cancelled: never published."""
PARTIAL_MESSAGE: Final = "the data product is a partial output of a job that failed or was cancelled"


class PublishFailed(ConflictError):
    """The files could not be moved; the product is back in staging with the error recorded."""

    code = "PUBLISH_FAILED"


@dataclass(frozen=True)
class Criteria:
    """Whether automatic publishing may take the product, and why not."""

    enabled: bool
    met: bool
    reasons: list[str]


def criteria(row: Mapping[str, Any] | None) -> Criteria:
    """The legacy reasons: ``not_found``, ``disabled``, ``not_finalized``, ``not_validated``,
    ``qa_not_passed``; and ``not_staging`` / ``max_attempts`` for what would stop it too."""
    if row is None:
        return Criteria(False, False, ["not_found"])
    reasons = []
    if not row["auto_publish"]:
        reasons.append("disabled")
    if row["finalization_status"] == PARTIAL:
        reasons.append("partial")
    elif row["finalization_status"] != "finalized":
        reasons.append("not_finalized")
    if row["validation_status"] != "validated":
        reasons.append("not_validated")
    if row["data_type"] in NEEDS_QA and row["qa_status"] != "passed":
        reasons.append("qa_not_passed")
    if row["status"] != ProductStatus.STAGING:
        reasons.append("not_staging")
    if row["publish_attempts"] >= MAX_AUTO_ATTEMPTS:
        reasons.append("max_attempts")
    return Criteria(bool(row["auto_publish"]), not reasons, reasons)


async def _row(conn: AsyncConnection, data_id: str) -> dict[str, Any] | None:
    found = (
        (await conn.execute(select(data_products).where(data_products.c.data_id == data_id)))
        .mappings()
        .first()
    )
    return dict(found) if found is not None else None


async def get_product(engine: AsyncEngine, data_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = await _row(conn, data_id)
    if row is None:
        raise NotFoundError(f"no data product {data_id[:200]!r}", key=data_id[:200])
    return row


async def _emit(publish: Publish | None, row: Mapping[str, Any], event: str) -> None:
    """Signal the change; it is committed already, so a bus that cannot take the event is
    logged rather than turned into a failure of the change itself."""
    if publish is None:
        return
    payload: ProductStatusPayload = {
        "event": event,
        "product_pk": row["id"],
        "data_id": row["data_id"][:256],
        "status": row["status"],
    }
    try:
        await PRODUCT_STATUS.publish(publish, payload)
    except EventBusError as error:
        log.warning("data product %s: %s event not published: %s", row["id"], event, error)


def _check_status(name: str, value: str | None, allowed: Sequence[str]) -> None:
    if value is not None and value not in allowed:
        raise InputError(f"`{name}` must be one of {', '.join(allowed)}", field=name)


# -- registration and lineage ------------------------------------------------------------


async def register_product(
    engine: AsyncEngine,
    *,
    data_id: str,
    data_type: str,
    stage_path: str,
    metadata: Mapping[str, Any] | None = None,
    parents: Sequence[str] = (),
    relationship: str = "derived_from",
    links: Mapping[str, int | None] | None = None,
    publish: Publish | None = None,
) -> dict[str, Any]:
    """Insert a ``staging`` product (and edges from ``parents``); an existing id is a conflict."""
    try:
        kind = ProductType(data_type)
    except ValueError:
        raise InputError(f"unknown data type {data_type!r}", field="dataType") from None
    if relationship not in RELATIONSHIPS:
        raise InputError(f"relationship must be one of {', '.join(RELATIONSHIPS)}", field="relationship")
    now = datetime.now(UTC)
    try:
        row = await _register(engine, now, data_id, kind, stage_path, metadata, parents, relationship, links)
    except IntegrityError:  # PostgreSQL: a concurrent writer registered the same id first
        raise ConflictError(
            f"data product {data_id[:200]!r} is already registered", key=data_id[:200]
        ) from None
    await _emit(publish, row, "registered")
    return row


async def _register(
    engine: AsyncEngine,
    now: datetime,
    data_id: str,
    kind: ProductType,
    stage_path: str,
    metadata: Mapping[str, Any] | None,
    parents: Sequence[str],
    relationship: str,
    links: Mapping[str, int | None] | None,
) -> dict[str, Any]:
    async with write_transaction(engine) as conn:
        if await _row(conn, data_id) is not None:
            raise ConflictError(f"data product {data_id[:200]!r} is already registered", key=data_id[:200])
        parent_rows = [await _row(conn, p) for p in parents]
        missing = [p for p, r in zip(parents, parent_rows, strict=True) if r is None]
        if missing:
            raise NotFoundError(f"no parent data product {missing[0][:200]!r}", key=missing[0][:200])
        result = await conn.execute(
            insert(data_products)
            .values(
                data_id=data_id,
                data_type=str(kind),
                status=str(ProductStatus.STAGING),
                stage_path=stage_path,
                created_at=now,
                staged_at=now,
                finalization_status="pending",
                qa_status="pending",
                validation_status="pending",
                auto_publish=True,
                publish_attempts=0,
                metadata=dict(metadata or {}),
                **dict(links or {}),
            )
            .returning(*data_products.c)
        )
        row = dict(result.mappings().one())
        for parent in parent_rows:
            assert parent is not None
            await conn.execute(
                insert(data_lineage).values(
                    parent_pk=parent["id"], child_pk=row["id"], relationship=relationship
                )
            )
    return row


async def link_products(
    engine: AsyncEngine, parent_id: str, child_id: str, relationship: str = "derived_from"
) -> tuple[dict[str, Any], dict[str, Any]]:
    if relationship not in RELATIONSHIPS:
        raise InputError(f"relationship must be one of {', '.join(RELATIONSHIPS)}", field="relationship")
    if parent_id == child_id:
        raise InputError("a product cannot derive from itself", field="parentId")
    async with write_transaction(engine) as conn:
        parent, child = await _row(conn, parent_id), await _row(conn, child_id)
        for key, row in ((parent_id, parent), (child_id, child)):
            if row is None:
                raise NotFoundError(f"no data product {key[:200]!r}", key=key[:200])
        assert parent is not None and child is not None
        # One statement: a concurrent identical link is skipped, not a key violation.
        await conn.execute(
            insert_or_skip(conn.dialect.name, data_lineage).values(
                parent_pk=parent["id"], child_pk=child["id"], relationship=relationship
            )
        )
    return parent, child


# -- finalisation and the auto-publish switch --------------------------------------------


async def finalize(
    engine: AsyncEngine,
    settings: Settings,
    data_id: str,
    *,
    qa_status: str | None = None,
    validation_status: str | None = None,
    publish: Publish | None = None,
    actor: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Finalize; publish at once when the criteria hold. Returns (row, auto-published)."""
    _check_status("qaStatus", qa_status, QA_STATUSES)
    _check_status("validationStatus", validation_status, VALIDATION_STATUSES)
    values: dict[str, Any] = {"finalization_status": "finalized", "finalized_by": actor}
    if qa_status is not None:
        values["qa_status"] = qa_status
    if validation_status is not None:
        values["validation_status"] = validation_status
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            update(data_products)
            .where(
                data_products.c.data_id == data_id,
                data_products.c.status == ProductStatus.STAGING,
                data_products.c.finalization_status != PARTIAL,
            )
            .values(**values)
            .returning(*data_products.c)
        )
        found = result.mappings().first()
        if found is None:
            row = await _row(conn, data_id)
            if row is None:
                raise NotFoundError(f"no data product {data_id[:200]!r}", key=data_id[:200])
            if row["finalization_status"] == PARTIAL:
                raise ConflictError(PARTIAL_MESSAGE, status=row["status"])
            raise ConflictError(f"data product is {row['status']}, not staging", status=row["status"])
        row = dict(found)
    await _emit(publish, row, "finalized")
    if criteria(row).met:
        try:
            published = await publish_product(
                engine, settings, data_id, mode="auto", publish=publish, actor=actor
            )
            return published, True
        except PublishFailed:
            return await get_product(engine, data_id), False
        except ConflictError:  # another writer claimed it first
            return await get_product(engine, data_id), False
    return row, False


async def set_auto_publish(
    engine: AsyncEngine, data_id: str, enabled: bool, publish: Publish | None = None
) -> dict[str, Any]:
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            update(data_products)
            .where(data_products.c.data_id == data_id)
            .values(auto_publish=enabled)
            .returning(*data_products.c)
        )
        found = result.mappings().first()
    if found is None:
        raise NotFoundError(f"no data product {data_id[:200]!r}", key=data_id[:200])
    row = dict(found)
    await _emit(publish, row, "auto_publish")
    return row


# -- publishing ---------------------------------------------------------------------------


def destination_folder(settings: Settings, data_type: str) -> Path:
    try:
        return settings.products_dir / TYPE_DIRS[ProductType(data_type)]
    except (ValueError, KeyError):
        return settings.products_dir / "misc"


def _source(settings: Settings, stage_path: str) -> Path:
    """The staged path, which must be under the staging area and not already published."""
    path = Path(stage_path)
    staging, products = settings.staging_dir.resolve(), settings.products_dir.resolve()
    parent = path.parent.resolve() if path.parent.exists() else path.parent
    source = parent / path.name
    if not path.is_absolute() or not under(source, [staging]) or under(source, [products]):
        raise MoveRefused("the staged path is not inside the staging area")
    return source


async def _claim(engine: AsyncEngine, data_id: str, mode: str) -> dict[str, Any]:
    conditions = [
        data_products.c.data_id == data_id,
        data_products.c.status == ProductStatus.STAGING,
        data_products.c.finalization_status != PARTIAL,
    ]
    if mode == "auto":
        conditions.append(data_products.c.publish_attempts < MAX_AUTO_ATTEMPTS)
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            update(data_products)
            .where(*conditions)
            .values(
                status=ProductStatus.PUBLISHING, publish_claimed_at=datetime.now(UTC), publish_target=None
            )
            .returning(*data_products.c)
        )
        claimed = result.mappings().first()
        if claimed is not None:
            return dict(claimed)
        row = await _row(conn, data_id)
    if row is None:
        raise NotFoundError(f"no data product {data_id[:200]!r}", key=data_id[:200])
    if row["status"] == ProductStatus.PUBLISHED:
        raise ConflictError("the data product is already published", status=row["status"])
    if row["status"] == ProductStatus.PUBLISHING:
        raise ConflictError("the data product is being published by another writer", status=row["status"])
    if row["finalization_status"] == PARTIAL:
        raise ConflictError(PARTIAL_MESSAGE, status=row["status"])
    raise ConflictError(
        f"automatic publishing gave up after {MAX_AUTO_ATTEMPTS} failed attempts; retry it",
        publish_attempts=row["publish_attempts"],
    )


_FINISHING: set[asyncio.Task[dict[str, Any]]] = set()
"""Publications whose callers were cancelled, finishing on their own (kept referenced)."""


async def publish_product(
    engine: AsyncEngine,
    settings: Settings,
    data_id: str,
    *,
    mode: str = "manual",
    publish: Publish | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Move the product's files to the products area and mark it published (see module doc).

    Once claimed, the publication runs to its end in a task of its own, outside the
    request's database work: a caller cancelled meanwhile (its deadline passed, its client
    went away) is cancelled at once, and the publication still ends ``published`` or back
    in ``staging`` with the error. Run in the caller's task, a cancellation left the row
    ``publishing`` for good (cancelled while the event was sent or the row written), or
    recorded it staged while the move, a thread nothing can stop, carried the files on to
    the products area.
    """
    if mode not in ("manual", "auto"):
        raise InputError("mode must be manual or auto", field="mode")
    row = await _claim(engine, data_id, mode)
    finishing = asyncio.create_task(
        _publish_claimed(engine, settings, row, mode, publish, actor), context=outside_work()
    )
    _FINISHING.add(finishing)
    finishing.add_done_callback(_finished)
    return await asyncio.shield(finishing)


def _finished(task: asyncio.Task[dict[str, Any]]) -> None:
    _FINISHING.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a caller still waiting has it too; a gone one needs none


async def _publish_claimed(
    engine: AsyncEngine,
    settings: Settings,
    row: dict[str, Any],
    mode: str,
    publish: Publish | None,
    actor: str | None,
) -> dict[str, Any]:
    await _emit(publish, row, "publishing")
    try:
        source = _source(settings, row["stage_path"])
        folder = destination_folder(settings, row["data_type"])
        planned = await asyncio.to_thread(free_destination, folder, source.name)
        await _record_target(engine, row["id"], planned)  # before any file moves: see recover_publishing
        dest = await asyncio.to_thread(move_product, source, folder, settings.staging_dir.resolve(), planned)
    except (OSError, MoveRefused) as exc:
        failed = await _record_failure(engine, row["id"], exc)
        await _emit(publish, failed, "publish_failed")
        raise PublishFailed(
            f"publishing failed: {failed['publish_error']}",
            publish_attempts=failed["publish_attempts"],
            publish_error=failed["publish_error"],
        ) from None
    except BaseException:
        # Cancelled mid-move or a defect: release the claim so the product can be retried.
        await _record_failure(engine, row["id"], RuntimeError("publishing was interrupted"))
        raise
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            update(data_products)
            .where(data_products.c.id == row["id"])
            .values(
                status=ProductStatus.PUBLISHED,
                published_path=str(dest),
                published_at=now,
                publish_mode=mode,
                published_by=actor,
                publish_attempts=0,
                publish_error=None,
                publish_failed_at=None,
                publish_claimed_at=None,
                publish_target=None,
            )
            .returning(*data_products.c)
        )
        done = dict(result.mappings().one())
    await _emit(publish, done, "published")
    return done


async def _record_target(engine: AsyncEngine, pk: int, dest: Path) -> None:
    async with write_transaction(engine) as conn:
        await conn.execute(
            update(data_products)
            .where(data_products.c.id == pk, data_products.c.status == ProductStatus.PUBLISHING)
            .values(publish_target=str(dest))
        )


async def _record_failure(engine: AsyncEngine, pk: int, error: BaseException) -> dict[str, Any]:
    message = (str(error) or type(error).__name__)[:MAX_ERROR_CHARS]
    log.warning("publishing data product %s failed: %s", pk, message)
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            update(data_products)
            .where(data_products.c.id == pk)
            .values(
                status=ProductStatus.STAGING,
                publish_attempts=data_products.c.publish_attempts + 1,
                publish_error=message,
                publish_failed_at=datetime.now(UTC),
                publish_claimed_at=None,
                publish_target=None,
            )
            .returning(*data_products.c)
        )
        return dict(result.mappings().one())


# -- recovering publications whose publisher died ------------------------------------------


@dataclass(frozen=True)
class _Found:
    """Where a dead publication's files are, and what settles its product."""

    values: dict[str, Any]
    event: str
    note: str


def _on_disk(settings: Settings, row: Mapping[str, Any], now: datetime) -> _Found | None:
    """Decide by what is on disk (runs in a thread); None: this process cannot see the areas."""
    if not settings.staging_dir.is_dir():
        return None  # the data directory is not mounted here: leave it to a process that sees it
    staged = Path(row["stage_path"])
    target = Path(row["publish_target"]) if row["publish_target"] else None
    in_staging = staged.is_absolute() and os.path.lexists(staged)
    in_products = target is not None and os.path.lexists(target)
    published = {
        "status": ProductStatus.PUBLISHED,
        "published_path": str(target),
        "published_at": now,
        "publish_mode": "auto",
        "published_by": None,
        "publish_attempts": 0,
        "publish_error": None,
        "publish_failed_at": None,
        "publish_claimed_at": None,
        "publish_target": None,
    }
    if in_products and not in_staging:
        note = f"its publisher died after moving the files; published at {target}"
        return _Found(published, "published", note)
    if in_products:
        # A move across filesystems died while removing the staged copy: the copy in the
        # products area is whole (it takes its name only once checked against the staged
        # files), the staged one may be partly removed already. Publishing again would copy
        # that remnant; so the product is published at the whole copy, and the staged
        # remnant is left where it is (nothing is deleted here) for an operator to remove.
        note = (
            f"its publisher died while removing the staged copy after the move; published at "
            f"{target}; what is left in staging at {staged} was not removed"
        )[:MAX_ERROR_CHARS]
        return _Found({**published, "publish_error": note}, "published", note)
    if in_staging:
        # Died before the move, or (across filesystems) while copying: the staged files are
        # whole; a hidden ``.<name>.partial-*`` copy may be left beside the destination.
        error = "the publisher died before the files moved; they are still in staging: publish again"
    else:
        error = "the publisher died and the files are in neither the staging nor the products area"
    values = {
        "status": ProductStatus.STAGING,
        "publish_attempts": data_products.c.publish_attempts + 1,
        "publish_error": error,
        "publish_failed_at": now,
        "publish_claimed_at": None,
        "publish_target": None,
    }
    return _Found(values, "publish_failed", error)


async def recover_publishing(
    engine: AsyncEngine,
    settings: Settings,
    *,
    older_than_s: float | None = None,
    publish: Publish | None = None,
    now: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Settle products left ``publishing`` by a publisher that died; returns the changed rows.

    A claim older than ``older_than_s`` (``Settings.publish_claim_timeout_s``) is taken to
    have lost its publisher; a younger one is not touched. What is on disk decides:

    * the files are at the recorded target in the products area and gone from staging:
      ``published`` there (the ``published`` event);
    * the files are still in staging and not at the target (died before or during the
      move; no target recorded: died before it began): back to ``staging`` with an error
      saying the publisher died and the attempt counted, so a publish can be retried (the
      ``publish_failed`` event);
    * both (a move across filesystems died while removing the staged copy): ``published``
      at the target, whose copy is whole, with a note in ``publish_error``; the staged
      remnant, possibly incomplete, is left in place rather than published again or
      removed: nothing is lost or deleted;
    * neither: back to ``staging`` with the error (a retry then reports them missing).

    A product whose claim has no time (claimed before revision 0024, or by an older
    server) is stamped now and settled a bound later. A process that cannot see the data
    directory leaves the products alone. Each product is settled with one UPDATE
    conditional on its old claim time, so two processes sweeping at once settle it once.
    """
    bound = settings.publish_claim_timeout_s if older_than_s is None else older_than_s
    if bound <= 0:
        return []
    now = now or datetime.now(UTC)
    c = data_products.c
    claimed = c.status == ProductStatus.PUBLISHING
    stale = and_(claimed, c.publish_claimed_at < now - timedelta(seconds=bound))
    async with engine.connect() as conn:
        found = (
            (
                await conn.execute(
                    select(data_products)
                    .where(or_(stale, and_(claimed, c.publish_claimed_at.is_(None))))
                    .order_by(c.id)
                    .limit(limit)
                )
            )
            .mappings()
            .all()
        )
    changed: list[dict[str, Any]] = []
    for old in map(dict, found):
        if old["publish_claimed_at"] is None:
            async with write_transaction(engine) as conn:
                await conn.execute(
                    update(data_products)
                    .where(c.id == old["id"], claimed, c.publish_claimed_at.is_(None))
                    .values(publish_claimed_at=now)
                )
            continue
        settled = await asyncio.to_thread(_on_disk, settings, old, now)
        if settled is None:
            log.warning("data product %s: publishing since %s, but the data directory is not here",
                        old["id"], old["publish_claimed_at"])  # fmt: skip
            continue
        async with write_transaction(engine) as conn:
            result = await conn.execute(
                update(data_products)
                .where(c.id == old["id"], stale, c.publish_claimed_at == old["publish_claimed_at"])
                .values(**settled.values)
                .returning(*data_products.c)
            )
            row = result.mappings().first()
        if row is None:
            continue  # settled by another sweeper, or by its publisher
        log.warning("data product %s (%s): %s", row["id"], row["data_id"][:200], settled.note)
        done = dict(row)
        await _emit(publish, done, settled.event)
        changed.append(done)
    return changed


async def retry_publish(
    engine: AsyncEngine,
    settings: Settings,
    data_id: str,
    publish: Publish | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Reset the failed-attempt count and publish again (automatic mode)."""
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            update(data_products)
            .where(data_products.c.data_id == data_id, data_products.c.status == ProductStatus.STAGING)
            .values(publish_attempts=0)
            .returning(data_products.c.id)
        )
        if result.first() is None:
            row = await _row(conn, data_id)
            if row is None:
                raise NotFoundError(f"no data product {data_id[:200]!r}", key=data_id[:200])
            raise ConflictError(f"data product is {row['status']}, not staging", status=row["status"])
    return await publish_product(engine, settings, data_id, mode="auto", publish=publish, actor=actor)


# -- monitoring ---------------------------------------------------------------------------


def _failed() -> Any:
    return and_(data_products.c.status == ProductStatus.STAGING, data_products.c.publish_attempts > 0)


async def failed_products(
    engine: AsyncEngine, *, min_attempts: int = 1, limit: int = 50
) -> list[dict[str, Any]]:
    """Staged products with failed publish attempts (at least ``min_attempts``), most recent first."""
    stmt = (
        select(data_products)
        .where(_failed(), data_products.c.publish_attempts >= min_attempts)
        .order_by(data_products.c.publish_failed_at.desc(), data_products.c.id.desc())
        .limit(limit)
    )
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(stmt)).mappings()]


@dataclass(frozen=True)
class PublishStats:
    total_published: int
    total_staging: int
    total_publishing: int
    failed_publishes: int
    max_attempts_exceeded: int
    recent_failures_24h: int

    @property
    def success_rate_percent(self) -> float:
        """Published over (published + staged products with a failed attempt), as a percentage."""
        attempted = self.total_published + self.failed_publishes
        return 100.0 * self.total_published / attempted if attempted else 100.0


async def publish_stats(engine: AsyncEngine, now: datetime | None = None) -> PublishStats:
    since = (now or datetime.now(UTC)) - timedelta(hours=24)
    c = data_products.c
    counts = [
        func.count().filter(c.status == ProductStatus.PUBLISHED),
        func.count().filter(c.status == ProductStatus.STAGING),
        func.count().filter(c.status == ProductStatus.PUBLISHING),
        func.count().filter(_failed()),
        func.count().filter(and_(_failed(), c.publish_attempts >= MAX_AUTO_ATTEMPTS)),
        func.count().filter(and_(_failed(), or_(c.publish_failed_at >= since))),
    ]
    async with engine.connect() as conn:
        row = (await conn.execute(select(*counts))).one()
    return PublishStats(*(int(v or 0) for v in row))
