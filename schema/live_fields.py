"""Which subscription fields share one producer among identical subscriptions.

A subscription field whose resolver is built on ``resolvers.live.event_batches`` is
phase-aware (it can run as a shared producer's event ticks or as one subscriber's
snapshot), so the transports can compute it once per event for every client
(``server.live_transport``). Declare such a field with ``@shared_subscription(...)``
instead of ``@strawberry.subscription(...)``; ``shared_subscription_fields(schema)`` reads
the marks back from the built schema, so the list of shared fields is never kept by hand.
"""

from __future__ import annotations

from typing import Any, Final

import strawberry

SHARED_KEY: Final = "dsa110.live.shared"
"""The strawberry field metadata key that marks a shared subscription."""


def shared_subscription(*, description: str) -> Any:
    """``@strawberry.subscription(description=...)``, marked as shared.

    Only for resolvers built on ``event_batches`` whose result depends on the arguments
    alone, not on who asks: every subscriber of a producer receives the same result.
    """
    return strawberry.subscription(description=description, metadata={SHARED_KEY: True})


def shared_subscription_fields(schema: Any) -> frozenset[str]:
    """The GraphQL names of the ``Subscription`` fields of ``schema`` marked as shared."""
    definition = schema.get_type_by_name("Subscription")
    if definition is None:
        return frozenset()
    name_of = schema.config.name_converter.from_field
    return frozenset(name_of(field) for field in definition.fields if field.metadata.get(SHARED_KEY))
