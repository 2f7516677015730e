"""The durable outbox: subscriptions, one row per (subscriber, event), claims, attempts, the log.

Delivery is at-least-once on the wire and exactly-once for a receiver that honours the
idempotency key: a row is written (``INSERT ... ON CONFLICT DO NOTHING`` on
``(subscription, event_key)``, so finding an event twice enqueues it once) before any
attempt; an attempt first *claims* the row for a lease (an UPDATE that only one process
can win, on SQLite and PostgreSQL alike) and records its outcome after. A process killed
mid-attempt leaves the row pending with an expired lease: the next process to look
retries it with the same ``webhook-id``, and the receiver drops the duplicate.

Retries back off exponentially: ``base * 2**(attempt - 1)`` seconds, capped, with +-20 %
jitter so many failing rows do not retry in step; after ``max_attempts`` the row is
``failed`` and stays in the log.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.enums import AlertType
from dsa110.db.functions import insert_or_skip
from dsa110.db.tables import webhook_attempts, webhook_outbox, webhook_subscriptions
from dsa110.db.writes import write_transaction
from dsa110.errors import ConflictError, InputError, NotFoundError
from dsa110.names import safe_name
from dsa110.webhooks.formats import FORMATS
from dsa110.webhooks.signing import new_secret
from dsa110.webhooks.targets import Allowlist, check_literal, parse_target

ESE_KINDS: Final = tuple(str(kind) for kind in AlertType)
"""An ESE event's kind is the type of the alert the detector wrote for it."""
ALIASES: Final = {"ese_escalated": (str(AlertType.ESE_CONFIRMED), str(AlertType.ESE_REJECTED))}
"""Documented names that stand for other kinds: ``ese_escalated`` (README, GraphQL
``ESE_ESCALATED``) is any phase change, the name from before confirmations and
rejections were told apart; subscriptions that chose it keep hearing of both."""
EVENT_KINDS: Final = (*ESE_KINDS, *ALIASES, "job_failed", "streaming_down")
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
MAX_ERROR_CHARS: Final = 2000
MAX_SIGNIFICANCE: Final = 1e6


@dataclass(frozen=True)
class Event:
    """Something a subscriber may want to hear about, as found in the database."""

    kind: str
    key: str
    occurred_at: datetime
    data: dict[str, Any]
    significance: float | None = None
    false_alarm_probability: float | None = None
    """An ESE event's candidate's calibrated probability per steady source-year (None:
    not an ESE event, or a candidate stored before it was rated)."""


@dataclass(frozen=True)
class Claimed:
    pk: int
    subscription_pk: int
    event_key: str
    event_kind: str
    payload: dict[str, Any]
    attempts: int
    url: str
    secret: str
    format: str


def _kinds(kinds: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(str(k).lower() for k in kinds))
    unknown = [k for k in chosen if k not in EVENT_KINDS]
    if not chosen or unknown:
        raise InputError(
            f"event kinds must be a non-empty list of {', '.join(EVENT_KINDS)}", field="eventKinds"
        )
    return chosen


def _significance(value: float | None) -> float | None:
    if value is not None and not 0.0 <= value <= MAX_SIGNIFICANCE:
        raise InputError("minSignificance must be a number in [0, 1e6]", field="minSignificance")
    return value


def _false_alarm(value: float | None) -> float | None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise InputError("maxFalseAlarm must be a probability in [0, 1]", field="maxFalseAlarm")
    return value


async def create_subscription(
    engine: AsyncEngine,
    *,
    name: str,
    url: str,
    event_kinds: Sequence[str],
    min_significance: float | None,
    fmt: str,
    created_by: str,
    allow: Allowlist,
    max_false_alarm: float | None = None,
) -> tuple[int, str]:
    """A new subscription; returns its id and its signing secret (shown to the caller once)."""
    clean = safe_name(name, "name", 64)
    target = parse_target(url)
    check_literal(target, allow)
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}", field="format")
    secret = new_secret()
    now = datetime.now(UTC)
    try:
        async with write_transaction(engine) as conn:
            pk = (
                await conn.execute(
                    insert(webhook_subscriptions)
                    .values(
                        name=clean,
                        url=target.url,
                        secret=secret,
                        event_kinds=_kinds(event_kinds),
                        min_significance=_significance(min_significance),
                        max_false_alarm=_false_alarm(max_false_alarm),
                        format=fmt,
                        enabled=True,
                        created_at=now,
                        created_by=created_by[:255],
                        updated_at=now,
                    )
                    .returning(webhook_subscriptions.c.id)
                )
            ).scalar_one()
    except IntegrityError:
        raise ConflictError(f"a webhook named {clean!r} exists already", name=clean) from None
    return int(pk), secret


async def update_subscription(
    engine: AsyncEngine,
    pk: int,
    *,
    enabled: bool | None = None,
    event_kinds: Sequence[str] | None = None,
    min_significance: float | None = None,
    clear_min_significance: bool = False,
    max_false_alarm: float | None = None,
    clear_max_false_alarm: bool = False,
) -> None:
    values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
    if max_false_alarm is not None or clear_max_false_alarm:
        values["max_false_alarm"] = _false_alarm(max_false_alarm)
    if enabled is not None:
        values["enabled"] = enabled
    if event_kinds is not None:
        values["event_kinds"] = _kinds(event_kinds)
    if min_significance is not None or clear_min_significance:
        values["min_significance"] = _significance(min_significance)
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            update(webhook_subscriptions).where(webhook_subscriptions.c.id == pk).values(**values)
        )
    if result.rowcount != 1:
        raise NotFoundError(f"no webhook subscription {pk}", subscriptionId=pk)


async def delete_subscription(engine: AsyncEngine, pk: int) -> None:
    """Remove a subscription and its pending deliveries (the log of delivered ones goes with it)."""
    async with write_transaction(engine) as conn:
        result = await conn.execute(delete(webhook_subscriptions).where(webhook_subscriptions.c.id == pk))
    if result.rowcount != 1:
        raise NotFoundError(f"no webhook subscription {pk}", subscriptionId=pk)


async def subscriptions(engine: AsyncEngine, enabled_only: bool = False) -> list[dict[str, Any]]:
    statement = select(webhook_subscriptions).order_by(webhook_subscriptions.c.id)
    if enabled_only:
        statement = statement.where(webhook_subscriptions.c.enabled.is_(True))
    async with engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(statement)).mappings()]


def covers(kinds: Sequence[str], kind: str) -> bool:
    """``kind`` is among the subscribed ``kinds``, by name or through an alias."""
    return any(kind == chosen or kind in ALIASES.get(chosen, ()) for chosen in kinds)


def wants(subscription: dict[str, Any], event: Event) -> bool:
    """The subscriber asked for this kind, at this significance and false-alarm probability,
    and existed when it happened. A probability ceiling applies to ESE events only, and an
    ESE event without a probability (a candidate stored before ese-drw-3.0) does not pass
    it: the subscriber asked for calibrated events."""
    if event.kind != "test" and not covers(subscription["event_kinds"], event.kind):
        return False
    floor = subscription["min_significance"]
    if floor is not None and event.significance is not None and event.significance < floor:
        return False
    ceiling = subscription["max_false_alarm"]
    if ceiling is not None and event.kind in ESE_KINDS:
        fap = event.false_alarm_probability
        if fap is None or not fap <= ceiling:  # NaN fails too
            return False
    return event.kind == "test" or event.occurred_at >= subscription["created_at"]


async def enqueue(
    engine: AsyncEngine, events: Sequence[Event], subscribers: Sequence[dict[str, Any]] | None = None
) -> int:
    """Outbox rows for every (subscriber, event) that matches; returns how many rows are new."""
    subscribers = await subscriptions(engine, enabled_only=True) if subscribers is None else subscribers
    now = datetime.now(UTC)
    rows = [
        {
            "subscription_pk": s["id"],
            "event_key": e.key,
            "event_kind": e.kind,
            "payload": {"occurred_at": e.occurred_at.isoformat().replace("+00:00", "Z"), "data": e.data},
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for e in events
        for s in subscribers
        if wants(s, e)
    ]
    if not rows:
        return 0
    added = 0
    async with write_transaction(engine) as conn:
        statement = insert_or_skip(conn.dialect.name, webhook_outbox)
        for row in rows:  # one by one: rowcount says whether each was new
            added += (await conn.execute(statement.values(**row))).rowcount or 0
    return added


async def claim_due(engine: AsyncEngine, holder: str, lease: timedelta, limit: int = 20) -> list[Claimed]:
    """Claim up to ``limit`` due rows for ``lease``; each row is won by exactly one claimant."""
    now = datetime.now(UTC)
    o, s = webhook_outbox.c, webhook_subscriptions.c
    free = or_(o.claimed_until.is_(None), o.claimed_until < now)
    due = and_(o.state == PENDING, o.next_attempt_at <= now, free)
    async with engine.connect() as conn:
        candidates = (
            (await conn.execute(select(o.id).where(due).order_by(o.next_attempt_at, o.id).limit(limit)))
            .scalars()
            .all()
        )
    won: list[int] = []
    for pk in candidates:
        async with write_transaction(engine) as conn:
            result = await conn.execute(
                update(webhook_outbox)
                .where(o.id == pk, due)
                .values(claimed_until=now + lease, claimed_by=holder[:200])
            )
        if result.rowcount == 1:
            won.append(pk)
    if not won:
        return []
    statement = (
        select(
            o.id,
            o.subscription_pk,
            o.event_key,
            o.event_kind,
            o.payload,
            o.attempts,
            s.url,
            s.secret,
            s.format,
        )
        .select_from(webhook_outbox.join(webhook_subscriptions, s.id == o.subscription_pk))
        .where(o.id.in_(won))
        .order_by(o.id)
    )
    async with engine.connect() as conn:
        return [Claimed(*row) for row in (await conn.execute(statement)).all()]


def backoff(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Seconds before retry ``attempt + 1``: base * 2**(attempt - 1), capped, +-20 % jitter."""
    delay = min(cap_s, base_s * 2 ** max(0, attempt - 1))
    return float(delay * (rng or random).uniform(0.8, 1.2))


async def record_attempt(
    engine: AsyncEngine,
    claimed: Claimed,
    *,
    holder: str,
    delivered: bool,
    status_code: int | None,
    error: str | None,
    duration_ms: float,
    max_attempts: int,
    retry_in_s: float,
) -> str:
    """Write the attempt to the log and move the row on; returns the outcome (delivered, retry, failed)."""
    now = datetime.now(UTC)
    attempt = claimed.attempts + 1
    outcome = "delivered" if delivered else ("failed" if attempt >= max_attempts else "retry")
    state = {"delivered": DELIVERED, "failed": FAILED, "retry": PENDING}[outcome]
    o = webhook_outbox.c
    async with write_transaction(engine) as conn:
        await conn.execute(
            update(webhook_outbox)
            .where(o.id == claimed.pk, o.claimed_by == holder[:200])
            .values(
                state=state,
                attempts=attempt,
                claimed_until=None,
                claimed_by=None,
                delivered_at=now if delivered else None,
                next_attempt_at=now + timedelta(seconds=retry_in_s) if outcome == "retry" else now,
                last_status=status_code,
                last_error=(error or None) and error[:MAX_ERROR_CHARS],
            )
        )
        await conn.execute(
            insert(webhook_attempts).values(
                outbox_pk=claimed.pk,
                attempt=attempt,
                at=now,
                outcome=outcome,
                status_code=status_code,
                error=(error or None) and error[:MAX_ERROR_CHARS],
                duration_ms=duration_ms,
            )
        )
    return outcome


async def outbox_counts(engine: AsyncEngine) -> dict[str, int]:
    o = webhook_outbox.c
    async with engine.connect() as conn:
        rows = (await conn.execute(select(o.state, func.count()).group_by(o.state))).all()
    return {str(state): int(n) for state, n in rows}


async def deliveries(
    engine: AsyncEngine, subscription_pk: int | None, states: Sequence[str] | None, limit: int
) -> list[dict[str, Any]]:
    """The newest outbox rows (optionally of one subscription / in some states), each with its attempts."""
    o, a = webhook_outbox.c, webhook_attempts.c
    statement = select(webhook_outbox).order_by(o.id.desc()).limit(limit)
    if subscription_pk is not None:
        statement = statement.where(o.subscription_pk == subscription_pk)
    if states:
        statement = statement.where(o.state.in_(list(states)))
    async with engine.connect() as conn:
        rows = [dict(r) for r in (await conn.execute(statement)).mappings()]
        pks = [r["id"] for r in rows]
        attempts = (
            (await conn.execute(select(webhook_attempts).where(a.outbox_pk.in_(pks)).order_by(a.id)))
            .mappings()
            .all()
            if pks
            else []
        )
    by_row: dict[int, list[dict[str, Any]]] = {pk: [] for pk in pks}
    for attempt in attempts:
        by_row[attempt["outbox_pk"]].append(dict(attempt))
    for row in rows:
        row["attempt_log"] = by_row[row["id"]]
    return rows
