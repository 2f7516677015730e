"""Every error leaves with a stable ``extensions.code``; internal errors are masked.

Codes: ``GRAPHQL_PARSE_FAILED`` (not GraphQL), ``GRAPHQL_VALIDATION_FAILED`` (unknown
field, too deep, too many aliases...), ``BAD_USER_INPUT`` (variables, arguments, filters),
``NOT_FOUND``, ``FORBIDDEN``, ``CONFLICT``, ``UNAVAILABLE``, ``BUSY`` from the domain's public
errors (``BUSY`` also for a full connection pool, ``dsa110.db.writes.is_pool_exhausted``),
``OPERATION_NAME_REQUIRED`` (a document of several operations without
``operationName``), and ``INTERNAL_SERVER_ERROR`` for anything else, whose message is
replaced and whose traceback goes to the server log only. Every message is bounded
(``dsa110.errors.bounded_message``): graphql-core's own quote the literals they refuse.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import DocumentNode, OperationDefinitionNode
from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from dsa110.db.writes import is_pool_exhausted, is_unstorable_text, pool_busy_error
from dsa110.errors import PublicError, bounded_message

log = logging.getLogger("dsa110.graph")

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL = "INTERNAL_SERVER_ERROR"
OPERATION_NAME_REQUIRED = "OPERATION_NAME_REQUIRED"
UNSTORABLE_TEXT = "the request holds text with a NUL character (\\u0000), which no field accepts"


class OperationNameRequired(CannotGetOperationTypeError, PublicError):
    """A document of several operations sent without ``operationName``: which one to run is
    the client's to say (GraphQL spec, "GetOperation"; graphql-core's ``get_operation_ast``).
    Strawberry would run the first. Raised before validation, as strawberry's own unknown-name
    error (its base class) is, so it is answered the same way: over HTTP a 400 refusal
    (``server.graphql_http``), on graphql-ws an ``error`` message with this code, on
    graphql-transport-ws a 4400 close."""

    code = OPERATION_NAME_REQUIRED

    def __init__(self) -> None:
        PublicError.__init__(self, "Must provide operation name if query contains multiple operations.")
        self.operation_name = None

    def as_http_error_reason(self) -> str:
        return self.message


def require_operation_name(document: DocumentNode | None, provided: str | None) -> None:
    """Raise ``OperationNameRequired`` for a document of several operations and no name given."""
    if provided is not None or document is None:
        return
    if sum(isinstance(d, OperationDefinitionNode) for d in document.definitions) > 1:
        raise OperationNameRequired


def _public(error: GraphQLError) -> PublicError | None:
    original: BaseException | None = error.original_error
    while original is not None:
        if isinstance(original, PublicError):
            return original
        if is_pool_exhausted(original):  # no connection free in time: BUSY, as a lock not granted
            return pool_busy_error()
        original = getattr(original, "original_error", None) or original.__cause__
    return None


def _unstorable_text(error: GraphQLError) -> bool:
    """The database refused a text value of the request (``dsa110.db.writes.is_unstorable_text``)."""
    original: BaseException | None = error.original_error
    while original is not None:
        if is_unstorable_text(original):
            return True
        original = original.__cause__
    return False


def _raised_unlocated(error: GraphQLError) -> bool:
    """An exception raised outside any field, wrapped bare: no path, no node. Strawberry
    ends a subscription so when its resolver's generator raises (``GraphQLError(str(exc),
    original_error=exc)``), and the text may be anything (a driver's message quoting a
    connection string): a server error. The client's own request errors are located at a
    node (a variable's definition) or are strawberry's refusals of the operation."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError) or error.nodes:
        return False
    return not isinstance(original, CannotGetOperationTypeError | InvalidOperationTypeError)


def _tag(errors: list[GraphQLError] | None, code: str) -> None:
    for error in errors or ():
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": code}


def tag_request_errors(errors: list[GraphQLError]) -> None:
    """Codes for errors raised before execution that no extension hook sees (syntax errors)."""
    for error in errors:
        error.message = bounded_message(error.message)
        if error.path is None and error.message.startswith("Syntax Error"):
            _tag([error], PARSE_FAILED)


class ErrorCodes(MaskErrors):
    """Tag every error with a code, and mask those that are not the client's business."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=self._is_internal, error_message="Internal server error.")

    def on_validate(self) -> Iterator[None]:
        yield
        _tag(self.execution_context.pre_execution_errors, VALIDATION_FAILED)

    @staticmethod
    def _is_internal(error: GraphQLError) -> bool:
        error.message = bounded_message(error.message)  # graphql-core's messages quote the input
        if _unstorable_text(error):
            error.message = UNSTORABLE_TEXT  # not the database's text: it quotes the SQL
            error.extensions = {**(error.extensions or {}), "code": BAD_USER_INPUT}
            return False
        public = _public(error)
        if public is not None:
            extensions = {**(error.extensions or {}), "code": public.code}
            if public.details:
                extensions["details"] = {
                    k: v for k, v in public.details.items() if isinstance(v, str | int | float)
                }
            error.extensions = extensions
            return False
        if (error.extensions or {}).get("code"):
            return False
        if error.path is None and not _raised_unlocated(error):
            # A request error (variables, argument coercion): the client's input.
            error.extensions = {**(error.extensions or {}), "code": BAD_USER_INPUT}
            return False
        if error.original_error is None:
            # graphql-core's own completion errors (e.g. non-null violated): a server bug.
            log.error("graph error at %s: %s", error.path, error.message)
        else:
            log.error("internal error at %s", error.path, exc_info=error.original_error)
        return True

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL}
        return masked
