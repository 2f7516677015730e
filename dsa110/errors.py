"""Domain errors that are the caller's fault, each with a stable code.

Layers above translate them into a GraphQL ``extensions.code`` or an HTTP status; any
other exception is a bug and is masked.
"""

from __future__ import annotations

from typing import Any


class PublicError(Exception):
    """An error whose message is safe to show to the client."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InputError(PublicError, ValueError):
    code = "BAD_USER_INPUT"


class NotFoundError(PublicError, LookupError):
    code = "NOT_FOUND"


class ConflictError(PublicError):
    code = "CONFLICT"


class UnavailableError(PublicError):
    code = "UNAVAILABLE"


class BusyError(UnavailableError):
    """The write lock was not granted within the budget; nothing was written, retry later.

    ``details["retry_after_s"]`` is the suggested wait (HTTP ``Retry-After``).
    """

    code = "BUSY"
