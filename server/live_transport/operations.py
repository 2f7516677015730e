"""What the shared producers need to know about an operation before running it.

Identical subscriptions - same document, operation name and variables - share a producer:
``OperationKey`` is that identity (variables in canonical JSON). ``subscription_root_fields``
says which root fields an operation selects, so ``SharedSubscriptions`` shares only the
fields marked shareable. The rest are the small results it answers without executing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    parse,
)
from graphql import (
    OperationType as CoreOperationType,
)
from graphql.error import GraphQLSyntaxError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from dsa110.ops import caches

PARSE_CACHE_SIZE: Final = 256


@dataclass(frozen=True, slots=True)
class OperationKey:
    query: str
    operation_name: str | None
    variables: str
    """Canonical JSON of the variables (sorted keys)."""


def canonical(variables: dict[str, Any] | None) -> str:
    try:
        return json.dumps(variables or {}, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return repr(variables)


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def parsed(query: str) -> DocumentNode | None:
    try:
        return parse(query, max_tokens=10_000)
    except (GraphQLSyntaxError, GraphQLError):
        return None


caches.register(  # its hit and miss counts answer the `caches` query and /api/cache/stats
    "subscription_parse",
    caches.lru_reporter(
        "subscription_parse",
        "Parsed subscription documents, to share one producer per distinct subscription (LRU).",
        parsed,
    ),
    clear=caches.lru_clearer(parsed),
)


def subscription_root_fields(query: str, operation_name: str | None) -> frozenset[str]:
    """Root field names of the selected operation if it is a subscription, else empty.

    Fragments at the root make the operation unshared (rare for subscriptions, and the
    field set is then not obvious without validation).
    """
    chosen = _subscription(query, operation_name)
    if chosen is None:
        return frozenset()
    selections = chosen.selection_set.selections
    if not all(isinstance(s, FieldNode) for s in selections):
        return frozenset()
    return frozenset(s.name.value for s in selections if isinstance(s, FieldNode))


def is_subscription(query: str, operation_name: str | None) -> bool:
    """Is the selected operation a subscription (a stream), not a single-result query or mutation?"""
    return _subscription(query, operation_name) is not None


def _subscription(query: str, operation_name: str | None) -> OperationDefinitionNode | None:
    document = parsed(query)
    if document is None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        chosen = operations[0] if len(operations) == 1 else None
    else:
        chosen = next((o for o in operations if o.name is not None and o.name.value == operation_name), None)
    if chosen is None or chosen.operation is not CoreOperationType.SUBSCRIPTION:
        return None
    return chosen


def ends_stream(result: object) -> bool:
    """Is ``result`` the last of its subscription: an error after which nothing can follow?

    A pre-execution error, or the one error-only result strawberry ends a stream with when
    the subscription's resolver raises (the GraphQL spec's failed source stream): that error
    has no path, while an error executing one event's selection is located at its field
    (graphql-core gives it a path) and the events go on after it.
    """
    if isinstance(result, PreExecutionError):
        return True
    return (
        isinstance(result, ExecutionResult)
        and result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors or ())
    )


def error_result(message: str, code: str = "UNAVAILABLE") -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": code})])


def syntax_error(query: str) -> GraphQLSyntaxError | None:
    try:
        parse(query, max_tokens=10_000)
    except GraphQLSyntaxError as error:
        error.extensions = {"code": "GRAPHQL_PARSE_FAILED"}
        return error
    except GraphQLError:
        return None
    return None


async def single(result: Any) -> AsyncGenerator[Any, None]:
    yield result


def single_error(message: str) -> AsyncGenerator[Any, None]:
    return single(
        PreExecutionError(data=None, errors=[GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})])
    )
