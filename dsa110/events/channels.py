"""The channels the project publishes on, and the rule every channel name follows.

Names are short, lower-case and dotted so that, prefixed by a namespace, they are valid
Redis channels and PostgreSQL identifiers (at most 63 bytes) alike.
"""

from __future__ import annotations

import re
from typing import Final

GROUP_STATE: Final = "group.state"
"""An observation group changed state (queue state, calibration, imaging)."""
IMAGE_ADDED: Final = "image.added"
"""A new image row exists."""
MEASUREMENTS_ADDED: Final = "measurements.added"
"""Measurements were ingested for one image (payload names the image and source ids)."""
ESE_CANDIDATE: Final = "ese.candidate"
"""An ESE candidate was created or changed."""
JOB_STATE: Final = "job.state"
"""A job changed state."""
JOB_LOG: Final = "job.log"
"""A job wrote log lines."""
METRICS_SAMPLE: Final = "metrics.sample"
"""The system-metrics sampler stored a sample."""
PRODUCT_STATUS: Final = "product.status"
"""A data product changed status."""

ALL_CHANNELS: Final[tuple[str, ...]] = (
    GROUP_STATE,
    IMAGE_ADDED,
    MEASUREMENTS_ADDED,
    ESE_CANDIDATE,
    JOB_STATE,
    JOB_LOG,
    METRICS_SAMPLE,
    PRODUCT_STATUS,
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
    return channel


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
