"""Alert webhooks in the graph: subscriptions, their delivery log, a test delivery (admin).

Admin, not operator: a webhook makes the server send data to an address of the caller's
choosing, with a signing secret, so it is configuration of the service's outbound
traffic (like API keys), not pipeline operation. A leaked operator key cannot then
point the server at an internal host or siphon alerts out.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any
from urllib.parse import urlsplit

import strawberry
from sqlalchemy.exc import IntegrityError

from dsa110.auth.identity import Role
from dsa110.errors import NotFoundError
from dsa110.webhooks import outbox
from dsa110.webhooks.dispatcher import OUTBOX_CHANNEL
from dsa110.webhooks.sources import test_event
from dsa110.webhooks.targets import Allowlist
from schema.base import GraphInfo
from schema.permissions import requires

MAX_LISTED = 500


@strawberry.enum(
    description="What a webhook subscriber hears about. An ESE event's `type` is the type of the alert the "
    "detector wrote (`ese_candidate`, `ese_confirmed`, `ese_rejected`)."
)
class WebhookEventKind(Enum):
    ESE_CANDIDATE = strawberry.enum_value("ese_candidate", description="A new ESE candidate.")
    ESE_CONFIRMED = strawberry.enum_value("ese_confirmed", description="An ongoing candidate confirmed.")
    ESE_REJECTED = strawberry.enum_value("ese_rejected", description="A candidate rejected.")
    ESE_ESCALATED = strawberry.enum_value(
        "ese_escalated",
        description="Any phase change: ESE_CONFIRMED and ESE_REJECTED (deliveries carry those types).",
    )
    JOB_FAILED = "job_failed"
    STREAMING_DOWN = "streaming_down"


@strawberry.enum(description="A delivery body: the standard JSON envelope, or a Slack-compatible message.")
class WebhookFormat(Enum):
    STANDARD = "standard"
    SLACK = "slack"


@strawberry.enum(description="Where a delivery is.")
class WebhookDeliveryState(Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@strawberry.type(description="Where alerts of some kinds are POSTed, signed (Standard Webhooks).")
class WebhookSubscription:
    subscription_id: int
    name: str
    url_origin: str = strawberry.field(
        description="scheme://host[:port] of the URL; the path is not shown (it often is the secret)."
    )
    event_kinds: list[WebhookEventKind]
    min_significance: float | None = strawberry.field(
        description="ESE events below this significance (sigma) are not sent."
    )
    max_false_alarm: float | None = strawberry.field(
        description="ESE events whose candidate's calibrated false-alarm probability per steady "
        "source-year (`EseCandidate.falseAlarmProbability`) is above this are not sent, nor those of "
        "candidates without one; e.g. 0.002 expects about one false alert per 500 steady sources a "
        "year. Null: no ceiling."
    )
    format: WebhookFormat
    enabled: bool
    created_at: datetime
    created_by: str
    updated_at: datetime


@strawberry.type(
    description="A new subscription and its signing secret: store the secret now, it is shown once."
)
class NewWebhookSubscription:
    subscription: WebhookSubscription
    secret: str = strawberry.field(description="`whsec_...`: verify `webhook-signature` with it.")


@strawberry.type(description="One attempt to deliver: when, how it went.")
class WebhookAttempt:
    attempt: int
    at: datetime
    outcome: str = strawberry.field(description="delivered, retry or failed.")
    status_code: int | None
    error: str | None
    duration_ms: float


@strawberry.type(description="One event for one subscriber, from the outbox, with its attempts.")
class WebhookDelivery:
    delivery_id: int
    subscription_id: int
    event_key: str = strawberry.field(description="The idempotency key (`webhook-id`) the receiver sees.")
    event_kind: str
    state: WebhookDeliveryState
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    attempt_log: list[WebhookAttempt]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _subscription(row: dict[str, Any]) -> WebhookSubscription:
    return WebhookSubscription(
        subscription_id=row["id"],
        name=row["name"],
        url_origin=_origin(row["url"]),
        event_kinds=[WebhookEventKind(k) for k in row["event_kinds"]],
        min_significance=row["min_significance"],
        max_false_alarm=row["max_false_alarm"],
        format=WebhookFormat(row["format"]),
        enabled=row["enabled"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        updated_at=row["updated_at"],
    )


def _delivery(row: dict[str, Any]) -> WebhookDelivery:
    return WebhookDelivery(
        delivery_id=row["id"],
        subscription_id=row["subscription_pk"],
        event_key=row["event_key"],
        event_kind=row["event_kind"],
        state=WebhookDeliveryState(row["state"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        delivered_at=row["delivered_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        attempt_log=[
            WebhookAttempt(
                attempt=a["attempt"],
                at=a["at"],
                outcome=a["outcome"],
                status_code=a["status_code"],
                error=a["error"],
                duration_ms=a["duration_ms"],
            )
            for a in row["attempt_log"]
        ],
    )


async def _one(info: GraphInfo, pk: int) -> WebhookSubscription:
    for row in await outbox.subscriptions(info.context.engine):
        if row["id"] == pk:
            return _subscription(row)
    raise NotFoundError(f"no webhook subscription {pk}", subscriptionId=pk)


async def _wake(info: GraphInfo) -> None:
    bus = info.context.bus
    if bus is not None:
        await OUTBOX_CHANNEL.publish(bus.publish, {})


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="Every webhook subscription (admin).", extensions=[requires(Role.ADMIN)])
    async def webhook_subscriptions(self, info: GraphInfo) -> list[WebhookSubscription]:
        return [_subscription(r) for r in await outbox.subscriptions(info.context.engine)]

    @strawberry.field(
        description="The delivery log, newest first: each event per subscriber and its attempts (admin).",
        extensions=[requires(Role.ADMIN)],
    )
    async def webhook_deliveries(
        self,
        info: GraphInfo,
        subscription_id: int | None = None,
        states: list[WebhookDeliveryState] | None = None,
        first: int = 50,
    ) -> list[WebhookDelivery]:
        limit = max(1, min(first, MAX_LISTED))
        chosen = [s.value for s in states] if states else None
        rows = await outbox.deliveries(info.context.engine, subscription_id, chosen, limit)
        return [_delivery(r) for r in rows]


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(
        description="Send alerts of these kinds to a URL, signed with a new secret shown this once (admin). "
        "Internal addresses are refused unless listed in DSA110_WEBHOOK_ALLOW_HOSTS.",
        extensions=[requires(Role.ADMIN)],
    )
    async def create_webhook_subscription(
        self,
        info: GraphInfo,
        name: str,
        url: str,
        event_kinds: list[WebhookEventKind],
        min_significance: float | None = None,
        format: WebhookFormat = WebhookFormat.STANDARD,
        max_false_alarm: Annotated[
            float | None,
            strawberry.argument(description="Highest false-alarm probability of ESE events sent, in [0, 1]."),
        ] = None,
    ) -> NewWebhookSubscription:
        ctx = info.context
        pk, secret = await outbox.create_subscription(
            ctx.engine,
            name=name,
            url=url,
            event_kinds=[k.value for k in event_kinds],
            min_significance=min_significance,
            max_false_alarm=max_false_alarm,
            fmt=format.value,
            created_by=ctx.identity.author,
            allow=Allowlist(ctx.settings.webhook_allow_hosts),
        )
        return NewWebhookSubscription(subscription=await _one(info, pk), secret=secret)

    @strawberry.mutation(
        description="Pause or resume a subscription, or change what it hears (admin).",
        extensions=[requires(Role.ADMIN)],
    )
    async def update_webhook_subscription(
        self,
        info: GraphInfo,
        subscription_id: int,
        enabled: bool | None = None,
        event_kinds: list[WebhookEventKind] | None = None,
        min_significance: float | None = None,
        max_false_alarm: Annotated[
            float | None,
            strawberry.argument(description="New probability ceiling in [0, 1]; unchanged when not given."),
        ] = None,
        clear_max_false_alarm: Annotated[
            bool, strawberry.argument(description="Remove the probability ceiling.")
        ] = False,
    ) -> WebhookSubscription:
        await outbox.update_subscription(
            info.context.engine,
            subscription_id,
            enabled=enabled,
            event_kinds=[k.value for k in event_kinds] if event_kinds is not None else None,
            min_significance=min_significance,
            max_false_alarm=max_false_alarm,
            clear_max_false_alarm=clear_max_false_alarm,
        )
        return await _one(info, subscription_id)

    @strawberry.mutation(
        description="Delete a subscription and its deliveries; true when it existed (admin).",
        extensions=[requires(Role.ADMIN)],
    )
    async def delete_webhook_subscription(self, info: GraphInfo, subscription_id: int) -> bool:
        await outbox.delete_subscription(info.context.engine, subscription_id)
        return True

    @strawberry.mutation(
        description="Queue a signed test delivery to a subscription now (admin); see `webhookDeliveries`.",
        extensions=[requires(Role.ADMIN)],
    )
    async def test_webhook_subscription(self, info: GraphInfo, subscription_id: int) -> WebhookDelivery:
        ctx = info.context
        gone = NotFoundError(f"no webhook subscription {subscription_id}", subscriptionId=subscription_id)
        # A delete may land between any two of these steps (an admin's other tab): each
        # place it can show is answered as the subscription being gone, never a 500.
        row = next((r for r in await outbox.subscriptions(ctx.engine) if r["id"] == subscription_id), None)
        if row is None:
            raise gone
        event = test_event(row["name"])
        try:
            await outbox.enqueue(ctx.engine, [event], [row])
        except IntegrityError:  # its outbox row's subscription was deleted meanwhile
            raise gone from None
        await _wake(info)
        rows = await outbox.deliveries(ctx.engine, subscription_id, None, MAX_LISTED)
        queued = next((r for r in rows if r["event_key"] == event.key), None)
        if queued is None:  # deleted, its deliveries with it, after the row went in
            raise gone
        return _delivery(queued)
