"""Counting GraphQL operations for Prometheus: by operation name, type, outcome and error code."""

from __future__ import annotations

import time
from typing import Any

from graphql import get_operation_ast

from dsa110 import telemetry


def record_operation(context: Any, start: float, *, validated: bool) -> None:
    """Count one finished operation, its latency (since ``start``, a ``perf_counter``) and its
    errors' codes; called after every other extension is done (``schema.guards``), so the
    errors are coded and masked already. ``validated``: the document was parsed and passed
    the schema's validation (``pre_execution_errors`` cannot say: strawberry puts the
    execution's errors there too)."""
    try:
        kind = context.operation_type.value
    except Exception:  # no document (a parse error): the type is unknown
        kind = "unknown"
    result = context.result
    errors = list((result.errors if result is not None else None) or context.pre_execution_errors or ())
    # An unauthenticated caller brings in a new name only with a valid operation (however it
    # ran: a field's error is no reason to hide its name), and only some names in all
    # (``telemetry.operation_label``).
    document = context.graphql_document
    valid = (
        validated and document is not None and get_operation_ast(document, context.operation_name) is not None
    )
    identity = getattr(context.context, "identity", None)
    authenticated = identity is not None and not identity.anonymous
    name = telemetry.operation_label(context.operation_name, valid=valid, authenticated=authenticated)
    telemetry.GRAPHQL_LATENCY.labels(name, kind).observe(time.perf_counter() - start)
    telemetry.GRAPHQL_OPERATIONS.labels(name, kind, "error" if errors else "ok").inc()
    for error in errors:
        code = str((getattr(error, "extensions", None) or {}).get("code") or "UNKNOWN")
        telemetry.ERRORS.labels("graphql", code[:64]).inc()
