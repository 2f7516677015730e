"""The channels the project publishes on, each with its one payload type, and the naming rule.

Every channel is a ``Channel[Payload]``: its name (a ``str``, so ``bus.subscribe(JOB_STATE)``
and ``event.channel == JOB_STATE`` work as with a plain name) typed by the ``TypedDict`` of
what is published on it. Publishers go through the channel, so mypy checks the payload::

    await JOB_STATE.publish(bus.publish, {"job_id": ..., "type": ..., ...})

and readers get the same type back: ``JOB_STATE.payload(event).get("job_id")``. Payloads
are small signals (ids, states), readers query the rows. Events cross processes and
backends, so readers still check the values they use (a missing or mistyped key is
skipped, never trusted); the type says what a publisher of this code base sends.

Names are short, lower-case and dotted so that, prefixed by a namespace, they are valid
Redis channels and PostgreSQL identifiers (at most 63 bytes) alike.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    NamedTuple,
    NotRequired,
    Required,
    TypedDict,
    TypeVar,
    cast,
)

if TYPE_CHECKING:
    from dsa110.events.envelope import Event

P = TypeVar("P", bound=Mapping[str, Any])

Send = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""What publishes an event: ``EventBus.publish``, or a stand-in (a relay, a recorder)."""


class Signal(NamedTuple):
    """An event to publish later (after a commit): a plain channel name and a JSON object."""

    channel: str
    payload: dict[str, Any]


class Channel(str, Generic[P]):
    """A channel name, typed by its payload (``P``, a ``TypedDict``)."""

    __slots__ = ()

    async def publish(self, send: Send, payload: P) -> Any:
        """Publish ``payload`` on this channel through ``send`` (normally ``bus.publish``)."""
        return await send(*self.signal(payload))

    def signal(self, payload: P) -> Signal:
        """``payload`` on this channel, to publish later (``await send(*signal)``)."""
        return Signal(str(self), dict(payload))

    def payload(self, event: Event) -> P:
        """``event``'s payload as this channel's type (the reader still checks what it uses)."""
        return cast(P, event.payload)


# -- payloads ---------------------------------------------------------------------------


class GroupStatePayload(TypedDict):
    group_pk: int
    group_id: str
    state: str
    from_state: str | None
    retry_count: int
    subbands: NotRequired[int]
    """The streaming watcher: subband files present when a group gains one."""
    job_id: NotRequired[int]
    """The convert job queued with the move to ``pending`` (the streaming watcher completing
    a group, an operator's reprocess)."""


class ImagePayload(TypedDict):
    image_pk: int
    path: str
    group_pk: int | None


class MeasurementsPayload(TypedDict):
    image_pk: int
    n_measurements: int
    source_pks: list[int]
    """At most the first 1,000 source pks measured on the image."""


class EseCandidateColumns(TypedDict, total=False):
    """A candidate's detector columns as stored in ``ese_candidates``: what the detector
    writes (``dsa110.ops.ese_detect._candidate_values``) and publishes with a creation or
    phase change, and what the job's relay reads back (``dsa110.ops.ese_relay``)."""

    score: float
    significance: float
    start_mjd: float
    end_mjd: float
    depth: float
    baseline_flux_jy: float
    min_flux_jy: float
    detector_version: str
    phase: str | None
    """``ongoing``, ``confirmed`` or ``rejected``; None before ese-drw-3.0 and for legacy rows."""
    kind: str | None
    """What the detector saw: ``dip``, ``ongoing`` or ``egress``; None before ese-drw-3.0."""
    false_alarm_probability: float | None
    """Per steady source-year (``dsa110.science.ese_far``); None when not rated."""
    red_rms: float | None
    """The red-noise rms as a fraction of the baseline flux (the live false-alarm stratum);
    None when not known, never NaN (JSON has no NaN: the bus refuses a payload with one)."""


class EseCandidatePayload(EseCandidateColumns, total=False):
    event: Required[str]
    """``new`` (the detector or a legacy import created it), ``confirmed`` / ``rejected``
    (the detector moved it to that phase), ``updated`` (a legacy import re-read it) or
    ``status_changed`` (a person reviewed it)."""
    candidate_pk: Required[int]
    source_pk: Required[int]
    status: str | None
    alert_pk: int
    source_id: str | None
    from_status: str | None
    changed_by: str | None
    from_phase: str | None
    """The detector's phase before a phase change; None for a new candidate."""


class JobStatePayload(TypedDict):
    job_id: int
    type: str
    state: str
    from_state: str | None
    group_pk: int | None
    batch_id: NotRequired[int | None]
    progress: NotRequired[float]
    cancel_requested: NotRequired[bool]


class JobLogPayload(TypedDict):
    job_id: int
    first_line_id: int
    last_line_id: int
    n_lines: int


class DiskPayload(TypedDict):
    mount: str
    total: int
    used: int
    free: int
    percent: float


class MetricsSamplePayload(TypedDict):
    id: int | None
    sampled_at: str
    cpu_percent: float
    memory_total_bytes: int
    memory_used_bytes: int
    memory_percent: float
    disks: list[DiskPayload] | None
    load_1: float | None
    load_5: float | None
    load_15: float | None
    host: str
    disks_omitted: NotRequired[bool]
    """Set (with ``disks`` None) when the disk list made the event too large."""


class ProductStatusPayload(TypedDict):
    event: str
    """``registered``, ``finalized``, ``published``, ``publish_failed``, ``status``, ..."""
    product_pk: int
    data_id: str
    status: str


class ApiKeyPayload(TypedDict):
    event: str
    """``revoked`` (what exists today; any later change that takes rights away from a key
    publishes here too, so that caches drop it)."""
    prefix: str
    """The key's public prefix (``d110_<prefix>_...``): what names it, never its secret."""


class WebhookOutboxPayload(TypedDict):
    """Nothing: the signal alone wakes the webhook dispatcher (a test delivery was queued)."""


# -- the channels -----------------------------------------------------------------------

GROUP_STATE: Final = Channel[GroupStatePayload]("group.state")
"""An observation group changed state (queue state, calibration, imaging)."""
IMAGE_ADDED: Final = Channel[ImagePayload]("image.added")
"""A new image row exists."""
MEASUREMENTS_ADDED: Final = Channel[MeasurementsPayload]("measurements.added")
"""Measurements were ingested for one image (payload names the image and source ids)."""
ESE_CANDIDATE: Final = Channel[EseCandidatePayload]("ese.candidate")
"""An ESE candidate was created or changed."""
JOB_STATE: Final = Channel[JobStatePayload]("job.state")
"""A job changed state."""
JOB_LOG: Final = Channel[JobLogPayload]("job.log")
"""A job wrote log lines."""
METRICS_SAMPLE: Final = Channel[MetricsSamplePayload]("metrics.sample")
"""The system-metrics sampler stored a sample."""
PRODUCT_STATUS: Final = Channel[ProductStatusPayload]("product.status")
"""A data product changed status."""
WEBHOOK_OUTBOX: Final = Channel[WebhookOutboxPayload]("webhook.outbox")
"""A webhook delivery was queued outside the dispatcher (a test delivery)."""
API_KEY: Final = Channel[ApiKeyPayload]("auth.key")
"""An API key lost rights (revoked): every process drops it from its key cache. Not in the
event log (``dsa110.events.log`` records only the channels it describes)."""

ALL_CHANNELS: Final[tuple[Channel[Any], ...]] = (
    GROUP_STATE,
    IMAGE_ADDED,
    MEASUREMENTS_ADDED,
    ESE_CANDIDATE,
    JOB_STATE,
    JOB_LOG,
    METRICS_SAMPLE,
    PRODUCT_STATUS,
    WEBHOOK_OUTBOX,
    API_KEY,
)

MAX_CHANNEL_LENGTH: Final = 48
MAX_NAMESPACE_LENGTH: Final = 14
_CHANNEL_RE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*")
_NAMESPACE_RE = re.compile(r"[a-z][a-z0-9_]*")


def validate_channel(channel: object) -> str:
    """Return ``channel`` if it is a valid channel name, else raise ``ValueError``."""
    if (
        not isinstance(channel, str)
        or len(channel) > MAX_CHANNEL_LENGTH
        or not _CHANNEL_RE.fullmatch(channel)
    ):
        raise ValueError(
            f"invalid event channel {channel!r}: use dotted lower-case words "
            f"([a-z0-9_], at most {MAX_CHANNEL_LENGTH} characters), e.g. {GROUP_STATE!r}"
        )
    return str(channel)  # a plain str, also for a ``Channel``


def validate_namespace(namespace: object) -> str:
    """Return ``namespace`` if valid; namespaces keep deployments sharing a server apart."""
    if (
        not isinstance(namespace, str)
        or len(namespace) > MAX_NAMESPACE_LENGTH
        or not _NAMESPACE_RE.fullmatch(namespace)
    ):
        raise ValueError(
            f"invalid event namespace {namespace!r}: one lower-case word "
            f"([a-z0-9_], at most {MAX_NAMESPACE_LENGTH} characters)"
        )
    return namespace
