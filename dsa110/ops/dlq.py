"""The dead-letter queue: failed work an operator can retry, resolve or give up on.

Nothing is copied into a separate queue: an item *is* a failed row where the work is kept,
a job (``jobs.state = failed``, named ``job-<id>``) or a webhook delivery that exhausted its
attempts (``webhook_outbox.state = failed``, ``webhook-<id>``). ``dlq_resolutions`` records
what operators did with it, and an item's status follows from both:

* ``pending``: failed, nobody acted (or a retry failed again: it is back);
* ``retrying``: queued again through the job queue's own retry (or the outbox's), not done yet;
* ``resolved``: the retry succeeded, or an operator marked it resolved (with a note);
* ``failed``: an operator gave up on it (with a note).

What an operator may do with an item, by its status (``RETRY_FROM``, ``SETTLE_FROM``):

* ``pending``: retry it, resolve it or give up on it (``fail``);
* ``retrying``: nothing; its retry decides (``resolved`` when the work succeeds, ``pending``
  again when it fails, ``failed`` when the job is cancelled). Settling it meanwhile would
  record a verdict the work may contradict: a ``resolved`` item whose retry then failed
  would hide a failure from the queue;
* ``failed``: retry it (having given up, an operator may change their mind and try the
  work again; its outcome then decides). It is not resolved by hand: that is a retry's job;
* ``resolved``: nothing, it is done.

A settled item (``resolved``, ``failed``) thus never flips to the other settled status, as
it freely did before. A refused action is ``CONFLICT`` (409) naming the item's status. The
legacy contract (``pending|retrying|resolved|failed``) names the statuses but no
transitions. Every action is one write transaction that locks the item's work row and
changes its resolution row only if it is still as read (a conditional ``UPDATE``), so two
operators acting at once act one after the other, the second refused if it no longer may.

Lists, counts and each item are bounded reads (``limit`` ≤ 1000, ``offset`` ≤ 10,000).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import String, and_, case, cast, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.functions import insert_or_skip
from dsa110.db.ops_tables import dlq_resolutions
from dsa110.db.tables import jobs, webhook_outbox
from dsa110.db.writes import write_transaction
from dsa110.errors import ConflictError, InputError, NotFoundError
from dsa110.ops.queue import store

Publish = Callable[[str, dict[str, Any]], Awaitable[Any]]

COMPONENTS: Final = ("jobs", "webhooks")
STATUSES: Final = ("pending", "retrying", "resolved", "failed")
RETRY_FROM: Final = frozenset({"pending", "failed"})
"""The statuses an operator may retry an item from (see the module for why)."""
SETTLE_FROM: Final = frozenset({"pending"})
"""The statuses an operator may resolve an item or give up on it from."""
MAX_LIMIT: Final = 1000
MAX_OFFSET: Final = 10_000
MAX_NOTE: Final = 2000
_PREFIX: Final = {"jobs": "job-", "webhooks": "webhook-"}


@dataclass(frozen=True)
class DlqItem:
    key: str
    component: str
    operation: str
    error_type: str
    error_message: str | None
    context: dict[str, Any]
    created_at: datetime
    retry_count: int
    status: str
    resolved_at: datetime | None
    resolution_note: str | None


def parse_key(key: str) -> tuple[str, int]:
    """``job-42`` -> ("jobs", 42); a bare integer is a job. Raises ``InputError`` otherwise."""
    text = key.strip()
    for component, prefix in _PREFIX.items():
        if text.startswith(prefix):
            text, found = text[len(prefix) :], component
            break
    else:
        found = "jobs"
    if not (text.isascii() and text.isdigit()) or len(text) > 12:  # "²" is a digit to isdigit
        raise InputError(
            "a dead-letter item id is `job-<n>`, `webhook-<n>` or a job's integer id", field="id"
        )
    return found, int(text)


def _sources() -> dict[str, Any]:
    """Per component: the rows of the queue as one SELECT (key, status, time, columns...)."""
    r = dlq_resolutions.c
    j = jobs.c
    job_key = literal("job-") + cast(j.id, String)
    job_status = case(
        (r.status == "failed", "failed"),
        (r.status == "resolved", "resolved"),
        (and_(r.status == "retrying", j.state == "done"), "resolved"),
        (and_(r.status == "retrying", j.state.in_(("pending", "running"))), "retrying"),
        (j.state == "failed", "pending"),
        else_="failed",  # retried, then cancelled
    )
    job_rows = (
        select(
            job_key.label("key"),
            job_status.label("status"),
            func.coalesce(j.finished_at, j.created_at).label("at"),
            j.id,
            j.type,
            j.error,
            j.exit_code,
            j.attempts,
            j.params,
            j.ms_path,
            j.worker,
            r.retries,
            r.updated_at,
            r.note,
        )
        .select_from(jobs.outerjoin(dlq_resolutions, r.item_key == job_key))
        .where(or_(j.state == "failed", r.item_key.is_not(None)))
    )
    o = webhook_outbox.c
    hook_key = literal("webhook-") + cast(o.id, String)
    hook_status = case(
        (r.status == "failed", "failed"),
        (r.status == "resolved", "resolved"),
        (and_(r.status == "retrying", o.state == "delivered"), "resolved"),
        (and_(r.status == "retrying", o.state == "pending"), "retrying"),
        else_="pending",
    )
    hook_rows = (
        select(
            hook_key.label("key"),
            hook_status.label("status"),
            o.created_at.label("at"),
            o.id,
            o.event_kind,
            o.last_error,
            o.last_status,
            o.attempts,
            o.event_key,
            o.subscription_pk,
            r.retries,
            r.updated_at,
            r.note,
        )
        .select_from(webhook_outbox.outerjoin(dlq_resolutions, r.item_key == hook_key))
        .where(or_(o.state == "failed", r.item_key.is_not(None)))
    )
    return {"jobs": job_rows, "webhooks": hook_rows}


def _item(component: str, row: Any) -> DlqItem:
    m = row._mapping
    if component == "jobs":
        code = m["exit_code"]
        operation = str(m["type"])
        error_type = "job_lost" if code is None else f"exit_code_{code}"
        error_message = m["error"]
        context = {
            "job_id": m["id"],
            "job_type": m["type"],
            "attempts": m["attempts"],
            "ms_path": m["ms_path"],
            "worker": m["worker"],
            "params": m["params"],
        }
    else:
        status_code = m["last_status"]
        operation = f"deliver {m['event_kind']}"
        error_type = "delivery_failed" if status_code is None else f"http_{status_code}"
        error_message = m["last_error"]
        context = {
            "delivery_id": m["id"],
            "event_kind": m["event_kind"],
            "event_key": m["event_key"],
            "subscription_id": m["subscription_pk"],
            "attempts": m["attempts"],
        }
    resolved = m["status"] in ("resolved", "failed")
    return DlqItem(  # the resolution columns are the same for every component
        key=m["key"],
        component=component,
        operation=operation,
        error_type=error_type,
        error_message=error_message,
        context=context,
        created_at=m["at"],
        retry_count=int(m["retries"] or 0),
        status=str(m["status"]),
        resolved_at=m["updated_at"] if resolved else None,
        resolution_note=m["note"],
    )


def _check(component: str | None, status: str | None) -> list[str]:
    if component is not None and component not in COMPONENTS:
        raise InputError(f"component is one of {', '.join(COMPONENTS)}", field="component")
    if status is not None and status not in STATUSES:
        raise InputError(f"status is one of {', '.join(STATUSES)}", field="status")
    return [component] if component else list(COMPONENTS)


async def items(
    engine: AsyncEngine,
    *,
    component: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[DlqItem]:
    """Items newest first (both components merged by time)."""
    chosen = _check(component, status)
    if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
        raise InputError(f"limit is 1-{MAX_LIMIT} and offset 0-{MAX_OFFSET}", field="limit")
    found: list[DlqItem] = []
    async with engine.connect() as conn:
        for name in chosen:
            statement = _sources()[name].subquery()
            query = select(statement).order_by(statement.c.at.desc(), statement.c.key.desc())
            if status is not None:
                query = query.where(statement.c.status == status)
            rows = (await conn.execute(query.limit(offset + limit))).all()
            found.extend(_item(name, row) for row in rows)
    found.sort(key=lambda i: (i.created_at, i.key), reverse=True)
    return found[offset : offset + limit]


async def counts(engine: AsyncEngine, component: str | None = None) -> dict[str, int]:
    """``{total, pending, retrying, resolved, failed}`` over the chosen components."""
    out = dict.fromkeys(STATUSES, 0)
    async with engine.connect() as conn:
        for name in _check(component, None):
            statement = _sources()[name].subquery()
            query = select(statement.c.status, func.count()).group_by(statement.c.status)
            for state, n in (await conn.execute(query)).all():
                out[str(state)] = out.get(str(state), 0) + int(n)
    return {"total": sum(out.values()), **out}


async def get(engine: AsyncEngine, key: str) -> DlqItem:
    component, pk = parse_key(key)
    async with engine.connect() as conn:
        return await _get(conn, component, pk, key)


async def _get(conn: AsyncConnection, component: str, pk: int, key: str) -> DlqItem:
    statement = _sources()[component].subquery()
    row = (await conn.execute(select(statement).where(statement.c.id == pk))).first()
    if row is None:
        raise NotFoundError(f"{_PREFIX[component]}{pk} is not in the dead-letter queue", id=key[:40])
    return _item(component, row)


async def _locked(conn: AsyncConnection, key: str) -> DlqItem:
    """The item, read after locking its work row (the job or the delivery).

    Retrying and settling read the item's status, then change the work row and the
    resolution row. Each does so in one write transaction holding this lock (SQLite: the
    database's write lock), so two operators acting on one item at once act one after the
    other: a retry refused after a settle, or a settle recording after a retry. Without
    it a retry could overwrite an operator's ``resolved`` with ``retrying``, and between
    its two commits the item was in no list at all (its job queued, no resolution yet).
    """
    component, pk = parse_key(key)
    table = jobs if component == "jobs" else webhook_outbox
    await conn.execute(select(table.c.id).where(table.c.id == pk).with_for_update())
    return await _get(conn, component, pk, key)


@dataclass(frozen=True)
class _Recorded:
    """An item's resolution row as read: what its conditional update expects to find."""

    status: str
    retries: int


async def _recorded(conn: AsyncConnection, key: str) -> _Recorded | None:
    r = dlq_resolutions.c
    row = (await conn.execute(select(r.status, r.retries).where(r.item_key == key))).first()
    return None if row is None else _Recorded(str(row.status), int(row.retries or 0))


async def _resolve_row(
    conn: AsyncConnection,
    key: str,
    seen: _Recorded | None,
    status: str,
    note: str | None,
    by: str,
    retry: bool,
) -> None:
    """Record ``status`` for ``key`` if its resolution row is still ``seen`` (None: absent).

    The work row's lock (:func:`_locked`) already orders the writers of one item; this
    check makes the resolution row itself refuse a change made from a stale read.
    """
    r = dlq_resolutions.c
    now = datetime.now(UTC)
    if seen is None:
        changed = await conn.execute(
            insert_or_skip(conn.dialect.name, dlq_resolutions).values(
                item_key=key, status=status, note=note, retries=int(retry), updated_at=now, updated_by=by
            )
        )
    else:
        values: dict[str, Any] = {"status": status, "updated_at": now, "updated_by": by}
        if note is not None or not retry:
            values["note"] = note
        if retry:
            values["retries"] = r.retries + 1
        changed = await conn.execute(
            update(dlq_resolutions)
            .where(r.item_key == key, r.status == seen.status, r.retries == seen.retries)
            .values(**values)
        )
    if changed.rowcount != 1:
        raise ConflictError(f"{key} changed concurrently; reload it", id=key)


def _refuse_retry(item: DlqItem) -> None:
    if item.status not in RETRY_FROM:
        raise ConflictError(
            f"{item.key} is {item.status}; only pending or failed items can be retried",
            id=item.key,
            status=item.status,
        )


def _refuse_settle(item: DlqItem, status: str) -> None:
    if item.status in SETTLE_FROM:
        return
    if item.status == "retrying":
        why = "its retry settles it (resolved when it succeeds, pending again when it fails)"
    elif item.status == "failed":
        why = "it was given up on; retry it to try its work again"
    else:
        why = "it is done"
    verb = "resolved" if status == "resolved" else "given up (failed)"
    raise ConflictError(
        f"{item.key} is {item.status} and cannot be {verb}: {why}", id=item.key, status=item.status
    )


async def retry(engine: AsyncEngine, key: str, by: str, publish: Publish | None = None) -> DlqItem:
    """Queue the item's work again: a job through the queue's retry, a delivery through the outbox.

    The status check, the requeue and the resolution row are one transaction (:func:`_locked`)."""
    requeued: tuple[dict[str, Any], str] | None = None
    async with write_transaction(engine) as conn:
        item = await _locked(conn, key)
        _refuse_retry(item)
        seen = await _recorded(conn, item.key)
        if item.component == "jobs":
            requeued = await store.requeue(conn, int(item.context["job_id"]))
        else:
            o = webhook_outbox.c
            changed = await conn.execute(
                update(webhook_outbox)
                .where(o.id == int(item.context["delivery_id"]), o.state == "failed")
                .values(
                    state="pending", next_attempt_at=datetime.now(UTC), claimed_until=None, claimed_by=None
                )
            )
            if not changed.rowcount:
                raise ConflictError(f"{item.key} changed concurrently; retry")
        await _resolve_row(conn, item.key, seen, "retrying", None, by, retry=True)
    if requeued is not None:
        await store.requeued(engine, requeued[0], requeued[1], by, publish)
    elif publish is not None:
        await publish("webhook.outbox", {"outbox_pk": int(item.context["delivery_id"])})
    return await get(engine, item.key)


async def settle(engine: AsyncEngine, key: str, status: str, note: str | None, by: str) -> DlqItem:
    """Mark a pending item ``resolved`` or ``failed`` (given up), with an operator's note;
    any other item is refused (``ConflictError``, see the module)."""
    if status not in ("resolved", "failed"):
        raise InputError("an item is settled as resolved or failed", field="status")
    if note is not None and len(note) > MAX_NOTE:
        raise InputError(f"a note is at most {MAX_NOTE} characters", field="note")
    async with write_transaction(engine) as conn:
        item = await _locked(conn, key)
        _refuse_settle(item, status)
        await _resolve_row(conn, item.key, await _recorded(conn, item.key), status, note, by, retry=False)
    return await get(engine, item.key)
