"""Domain errors that are the caller's fault, each with a stable code.

Layers above translate them into a GraphQL ``extensions.code`` or an HTTP status; any
other exception is a bug and is masked.

A message often quotes the input that was refused (``no source 'x...'``), and a hostile
input may be 100k characters or a 309-digit number. So what an error says is bounded
here, once, whatever each call site formats (:func:`bounded_message`, :func:`shown`):
words longer than ``MAX_QUOTED`` characters are cut in the middle (their head and their
last ``KEPT_TAIL`` characters kept: the end of a path is what tells it apart), standalone
numbers of 16 digits or more shown to 6 significant digits (digits inside a word, a path or
an identifier are left alone), the whole message cut to ``MAX_MESSAGE``. The graph bounds
graphql-core's own messages (which quote literals) with the same function (``schema.errors``).
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

MAX_QUOTED: Final = 210
"""Characters of one quoted value (a word: no spaces) an error message or detail keeps whole:
a path quoted up to 200 characters (``dsa110.ops.stages.params``) with its quotes and
punctuation. A longer word keeps ``MAX_QUOTED`` characters, cut in the middle."""
KEPT_TAIL: Final = 60
"""Characters of the end of a word cut in the middle (a file name and its directory)."""
MAX_MESSAGE: Final = 500
"""Characters of a whole error message."""
ELLIPSIS: Final = "\u2026"
# A number standing alone: not preceded or followed by what continues a word, a path or an
# identifier (``/data/2025102414000000123_sb01.hdf5`` is a file name, not a number). A
# sentence's full stop may follow it.
_LONG_NUMBER = re.compile(r"(?<![\w./\\+-])[-+]?\d{16,}(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w/\\+-]|\.[\w/\\])")
_LONG_WORD = re.compile(rf"\S{{{MAX_QUOTED + 1},}}")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def _cut_middle(word: str) -> str:
    """``word`` in ``MAX_QUOTED`` characters: its head, an ellipsis, its last ``KEPT_TAIL``."""
    return word[: MAX_QUOTED - KEPT_TAIL - 1] + ELLIPSIS + word[-KEPT_TAIL:]


def _number(text: str) -> str:
    try:
        value = float(text)
    except (OverflowError, ValueError):
        return _cut(text, 16)
    return f"{value:.6g}" if math.isfinite(value) else _cut(text, 16)


def bounded_message(message: str) -> str:
    """``message`` with what it quotes bounded: standalone numbers of 16 digits or more as
    ``%.6g``, words longer than ``MAX_QUOTED`` cut in the middle (head, ellipsis, the last
    ``KEPT_TAIL`` characters), at most ``MAX_MESSAGE`` in all (then cut at the end)."""
    if len(message) <= MAX_QUOTED:
        return message  # nothing to cut (and the common case stays cheap)
    text = _LONG_NUMBER.sub(lambda m: _number(m.group()), message)
    text = _LONG_WORD.sub(lambda m: _cut_middle(m.group()), text)
    return _cut(text, MAX_MESSAGE)


def shown(value: Any) -> Any:
    """A detail value as an error may carry it: text as :func:`bounded_message` leaves it (a
    path or key meant for a program kept whole up to ``MAX_QUOTED``), an integer of more than
    15 digits as ``%.6g`` text."""
    if isinstance(value, str):
        return bounded_message(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        try:
            return f"{value:.6g}"
        except OverflowError:  # beyond a float: its order of magnitude
            return f"{'-' if value < 0 else ''}~1e+{int(abs(value).bit_length() * math.log10(2))}"
    return value


class PublicError(Exception):
    """An error whose message is safe to show to the client."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, code: str | None = None, **details: Any) -> None:
        message = bounded_message(message)  # it may quote the input (see the module docstring)
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = {key: shown(value) for key, value in details.items()}


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
