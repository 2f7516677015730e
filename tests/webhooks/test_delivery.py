"""The outbox and the dispatcher against a real receiver, on both database backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import alerts, ese_candidates, groups, jobs, webhook_attempts, webhook_outbox
from dsa110.webhooks.dispatcher import Dispatcher, DispatchSettings
from dsa110.webhooks.outbox import create_subscription, deliveries
from dsa110.webhooks.targets import Allowlist
from tests.live.conftest import insert_candidate, insert_source
from tests.webhooks.receiver import Receiver, receiving

LOCAL = Allowlist(["127.0.0.1"])


async def subscribe(engine: AsyncEngine, receiver: Receiver, name: str = "ops", **kw: Any) -> int:
    pk, secret = await create_subscription(
        engine,
        name=name,
        url=receiver.url,
        event_kinds=kw.pop("kinds", ["ese_candidate", "ese_escalated"]),
        min_significance=kw.pop("min_significance", None),
        max_false_alarm=kw.pop("max_false_alarm", None),
        fmt=kw.pop("fmt", "standard"),
        created_by="key:test",
        allow=LOCAL,
    )
    receiver.secret = secret
    return pk


async def alert(engine: AsyncEngine, significance: float, kind: str = "ese_candidate") -> int:
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        existing = (await conn.execute(select(alerts.c.source_pk).limit(1))).scalar()
        source = existing if existing is not None else await insert_source(conn)
        candidate = await insert_candidate(conn, source, significance=significance, when=now)
        return int(
            (
                await conn.execute(
                    insert(alerts)
                    .values(
                        source_pk=source,
                        candidate_pk=candidate,
                        alert_type=kind,
                        severity="critical",
                        message=f"ESE candidate at {significance} sigma",
                        triggered_at=now,
                    )
                    .returning(alerts.c.id)
                )
            ).scalar_one()
        )


async def dispatcher(engine: AsyncEngine, allow: Allowlist = LOCAL, **kw: Any) -> Dispatcher:
    settings = DispatchSettings(**{"timeout_s": 5.0, "retry_base_s": 0.05, "stale_streaming": None, **kw})
    d = Dispatcher(engine, None, settings, allow)
    await d.open()
    return d


async def test_a_new_candidate_is_delivered_once_signed(engine: AsyncEngine) -> None:
    async with receiving() as receiver:
        await subscribe(engine, receiver)
        alert_pk = await alert(engine, 7.0)
        d = await dispatcher(engine)
        try:
            assert await d.run_once() == 1
            assert await d.run_once() == 0  # found again, enqueued once: nothing new to send
        finally:
            await d.stop()
    (delivery,) = receiver.raw
    assert delivery.verified and delivery.headers["webhook-id"] == f"alert:{alert_pk}"
    assert delivery.headers["x-dsa110-event"] == "ese_candidate"
    body = delivery.json
    assert body["type"] == "ese_candidate" and body["id"] == f"alert:{alert_pk}"
    assert body["data"]["significance"] == 7.0 and body["data"]["source_id"] == "NVSS J123456.7+420312"
    (row,) = await deliveries(engine, None, None, 10)
    assert row["state"] == "delivered" and row["attempts"] == 1
    assert [a["outcome"] for a in row["attempt_log"]] == ["delivered"]
    assert row["attempt_log"][0]["status_code"] == 200


async def test_kinds_and_minimum_significance_choose_what_is_sent(engine: AsyncEngine) -> None:
    async with receiving() as receiver:
        await subscribe(engine, receiver, min_significance=8.0)
        await alert(engine, 7.0)  # below the floor
        strong = await alert(engine, 9.0)
        await alert(engine, 12.0, kind="other_kind")  # not an ESE alert
        d = await dispatcher(engine)
        try:
            await d.run_once()
        finally:
            await d.stop()
    assert [r.headers["webhook-id"] for r in receiver.raw] == [f"alert:{strong}"]


async def rated_alert(engine: AsyncEngine, fap: float | None) -> int:
    """An ESE alert whose candidate carries ``fap`` (None: stored before it was rated)."""
    pk = await alert(engine, 9.0)
    async with engine.begin() as conn:
        candidate = (await conn.execute(select(alerts.c.candidate_pk).where(alerts.c.id == pk))).scalar_one()
        await conn.execute(
            update(ese_candidates).where(ese_candidates.c.id == candidate).values(false_alarm_probability=fap)
        )
    return pk


async def test_a_false_alarm_ceiling_chooses_which_ese_events_are_sent(engine: AsyncEngine) -> None:
    """``max_false_alarm``: the calibrated operating point. Above it, or without a probability,
    an ESE event is not sent to that subscriber; one without a ceiling hears all; the payload
    carries the probability."""
    async with receiving() as picky, receiving() as everything:
        await subscribe(engine, picky, "picky", max_false_alarm=0.002)
        await subscribe(engine, everything, "everything")
        rare = await rated_alert(engine, 1e-4)
        at_ceiling = await rated_alert(engine, 0.002)
        await rated_alert(engine, 0.005)
        await rated_alert(engine, None)
        d = await dispatcher(engine)
        try:
            await d.run_once()
        finally:
            await d.stop()
    assert sorted(r.headers["webhook-id"] for r in picky.raw) == sorted(
        [f"alert:{rare}", f"alert:{at_ceiling}"]
    )
    assert len(everything.raw) == 4
    sent = {r.headers["webhook-id"]: r.json["data"]["false_alarm_probability"] for r in picky.raw}
    assert sent == {f"alert:{rare}": 1e-4, f"alert:{at_ceiling}": 0.002}


async def test_job_failures_and_streaming_silence(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    async with receiving() as receiver:
        await subscribe(engine, receiver, kinds=["job_failed", "streaming_down"], fmt="slack")
        async with engine.begin() as conn:
            job = (
                await conn.execute(
                    insert(jobs)
                    .values(
                        type="mosaic",
                        state="failed",
                        params={},
                        created_at=now,
                        started_at=now,
                        finished_at=now + timedelta(seconds=1),
                        error="disk full",
                    )
                    .returning(jobs.c.id)
                )
            ).scalar_one()
            await conn.execute(
                insert(groups).values(
                    group_id="2025-10-24T14:00:00",
                    state="completed",
                    received_at=now - timedelta(hours=2),
                    updated_at=now - timedelta(hours=2),
                    mid_mjd=60972.5,
                )
            )
        await alert(engine, 9.0)  # an ESE kind this subscriber did not ask for
        d = await dispatcher(engine, stale_streaming=timedelta(minutes=30))
        try:
            await d.run_once()
            await d.run_once()  # the silence goes on: still one event for it
        finally:
            await d.stop()
    kinds = sorted(r.headers["x-dsa110-event"] for r in receiver.raw)
    assert kinds == ["job_failed", "streaming_down"]
    failed = next(r for r in receiver.raw if r.headers["x-dsa110-event"] == "job_failed")
    assert failed.headers["webhook-id"].startswith(f"job:{job}:failed:")
    assert (
        failed.json["text"].startswith(":x: Pipeline job failed: job ") and "disk full" in failed.json["text"]
    )
    assert all(r.verified for r in receiver.raw)


async def test_failures_are_retried_with_back_off_then_given_up(engine: AsyncEngine) -> None:
    async with receiving(script=[500, 200]) as receiver:
        await subscribe(engine, receiver)
        await alert(engine, 7.0)
        d = await dispatcher(engine, max_attempts=3)
        try:
            await d.run_once()
            (row,) = await deliveries(engine, None, None, 10)
            assert row["state"] == "pending" and row["attempts"] == 1 and row["last_status"] == 500
            assert row["next_attempt_at"] > row["attempt_log"][0]["at"]  # backed off
            await asyncio.sleep(0.2)
            await d.run_once()
        finally:
            await d.stop()
    (row,) = await deliveries(engine, None, None, 10)
    assert row["state"] == "delivered" and [a["outcome"] for a in row["attempt_log"]] == [
        "retry",
        "delivered",
    ]
    assert len(receiver.raw) == 2 and len(receiver.unique) == 1
    assert receiver.raw[0].headers["webhook-id"] == receiver.raw[1].headers["webhook-id"]

    async with receiving(script=[500, 503]) as receiver:
        flaky_pk = await subscribe(engine, receiver, name="flaky")
        d = await dispatcher(engine, max_attempts=2)
        try:
            await d.run_once()  # the first alert predates this subscriber: nothing for it
            await alert(engine, 7.5)
            await d.run_once()
            await asyncio.sleep(0.2)
            await d.run_once()
        finally:
            await d.stop()
    flaky = await deliveries(engine, flaky_pk, None, 10)
    assert [(r["state"], r["attempts"]) for r in flaky] == [("failed", 2)]
    assert [a["outcome"] for a in flaky[0]["attempt_log"]] == ["retry", "failed"]


async def test_an_internal_address_is_refused_at_delivery(engine: AsyncEngine) -> None:
    async with receiving() as receiver:
        await subscribe(engine, receiver)
        await alert(engine, 7.0)
        d = await dispatcher(engine, allow=Allowlist(()))  # this process allows no internal host
        try:
            await d.run_once()
        finally:
            await d.stop()
    assert receiver.raw == []
    (row,) = await deliveries(engine, None, None, 10)
    assert row["state"] == "pending" and "refused" in row["last_error"] and "internal" in row["last_error"]


async def test_two_dispatchers_deliver_each_event_once(engine: AsyncEngine) -> None:
    async with receiving() as receiver:
        await subscribe(engine, receiver)
        for significance in (7.0, 8.0, 9.0, 10.0, 11.0):
            await alert(engine, significance)
        first, second = await dispatcher(engine), await dispatcher(engine)
        try:
            await asyncio.gather(first.run_once(), second.run_once())
            await asyncio.gather(first.run_once(), second.run_once())
        finally:
            await first.stop()
            await second.stop()
    assert len(receiver.raw) == 5 and len(receiver.unique) == 5
    async with engine.connect() as conn:
        assert (await conn.execute(select(webhook_outbox.c.state))).scalars().all() == ["delivered"] * 5
        assert len((await conn.execute(select(webhook_attempts.c.id))).all()) == 5


async def test_a_candidate_the_detector_confirms_reaches_its_subscribers(engine: AsyncEngine) -> None:
    """The detector writes an ``ese_confirmed`` alert when an ongoing candidate's dip is
    seen whole; a webhook subscribed to ESE_CONFIRMED hears of it, and so does one that
    chose the documented ESE_ESCALATED (any phase change), with the alert's own type. One
    subscribed to new candidates only does not."""
    from dsa110.db.tables import ese_candidates
    from dsa110.ops.ese_detect import run_detection
    from dsa110.science.ese import DETECTOR_VERSION
    from tests.ops.ese_curves import dip_curve, seed_curves

    t, flux, err = dip_curve()
    (source,) = await seed_curves(engine, [(flux, err)], t)
    now = datetime.now(UTC) - timedelta(seconds=1)  # the subscriptions come after it
    async with engine.begin() as conn:
        await conn.execute(
            insert(ese_candidates).values(
                source_pk=source, status="active", score=1.0, significance=6.0, start_mjd=60080.0,
                end_mjd=60105.0, depth=0.3, baseline_flux_jy=1.0, min_flux_jy=0.7,
                detector_version=DETECTOR_VERSION, flagged_at=now, updated_at=now, phase="ongoing",
                kind="ongoing", false_alarm_probability=0.002,
            )
        )  # fmt: skip
    async with receiving() as confirmed, receiving() as escalated, receiving() as new_only:
        await subscribe(engine, confirmed, "confirmed", kinds=["ese_confirmed"])
        await subscribe(engine, escalated, "escalated", kinds=["ese_escalated"], fmt="slack")
        await subscribe(engine, new_only, "new", kinds=["ese_candidate"])
        run = await run_detection(engine, [source], force=True)
        d = await dispatcher(engine)
        try:
            assert await d.run_once() == 2
        finally:
            await d.stop()
    assert run.new_candidate_pks == [] and len(run.changed_candidate_pks) == 1
    async with engine.connect() as conn:
        (written,) = (await conn.execute(select(alerts.c.id, alerts.c.alert_type))).all()
    assert written.alert_type == "ese_confirmed"
    (delivery,) = confirmed.raw
    assert delivery.verified and delivery.headers["webhook-id"] == f"alert:{written.id}"
    assert delivery.json["type"] == "ese_confirmed" and delivery.json["data"]["source_id"] == "T0"
    (slack,) = escalated.raw
    assert slack.verified and slack.headers["x-dsa110-event"] == "ese_confirmed"
    assert "ESE candidate confirmed" in slack.json["text"]
    assert new_only.raw == []


def test_every_alert_the_detector_writes_is_a_kind_a_webhook_can_choose() -> None:
    """One list: the detector's alert types (a new candidate, a move to any phase but the
    first) are webhook event kinds, and the graph's enum offers exactly the outbox's kinds."""
    from dsa110.db.enums import AlertType
    from dsa110.science.ese_tracker import PHASES
    from dsa110.webhooks.outbox import EVENT_KINDS
    from schema.webhooks import WebhookEventKind

    written = {AlertType.for_candidate(None)} | {AlertType.for_candidate(p) for p in PHASES if p != "ongoing"}
    assert written == set(AlertType) and written <= set(EVENT_KINDS)
    assert [kind.value for kind in WebhookEventKind] == list(EVENT_KINDS)


async def test_two_admins_changing_one_subscription_at_once_lose_neither_change(engine: AsyncEngine) -> None:
    """Each update writes only the fields it was given (and ``updated_at``) in one statement, so
    a ceiling and a significance floor set at the same moment both stand; an invalid ceiling
    sent alongside is refused before any write and changes nothing."""
    from dsa110.errors import InputError
    from dsa110.webhooks.outbox import subscriptions, update_subscription

    async with receiving() as receiver:
        pk = await subscribe(engine, receiver)
    results = await asyncio.gather(
        update_subscription(engine, pk, max_false_alarm=0.002),
        update_subscription(engine, pk, min_significance=7.5),
        update_subscription(engine, pk, max_false_alarm=float("nan")),
        return_exceptions=True,
    )
    assert results[0] is None and results[1] is None and isinstance(results[2], InputError)
    (row,) = await subscriptions(engine)
    assert (row["max_false_alarm"], row["min_significance"]) == (0.002, 7.5)
