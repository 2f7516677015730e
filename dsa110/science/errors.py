"""Errors of the science layer, on the project's ``dsa110.errors`` hierarchy.

``ScienceInputError`` is the caller's fault (an ``InputError``) with a finer stable code
than ``BAD_USER_INPUT``: ``OUT_OF_IMAGE``, ``BAD_SIZE``, ``BAD_POSITION``, ``BAD_REGION``,
``EMPTY_REGION``, ``NOT_AN_IMAGE``, ``FILE_NOT_FOUND``, ``FIT_FAILED``, ``BAD_PROFILE``,
``BAD_STRETCH``, ``BAD_TABLE``, ``BAD_SERVICE``. ``ExternalServiceUnavailable`` (code
``UNAVAILABLE``) means SIMBAD, NED or Gaia did not answer in time or at all.
"""

from __future__ import annotations

from dsa110.errors import InputError, UnavailableError


class ScienceInputError(InputError):
    """The request cannot be answered as asked; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class ExternalServiceUnavailable(UnavailableError):
    """An external catalog service is unreachable or too slow (code ``UNAVAILABLE``)."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(message, service=service)
        self.service = service
