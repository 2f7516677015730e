"""Relay connection arguments -> a concrete window of rows.

Cursors are opaque base64 offsets (``arrayconnection``-style). Offsets keep every list
sortable by any column, NULLs included, and let nested connections page with one
windowed statement (``ROW_NUMBER() OVER (PARTITION BY parent ...)``) for all parents.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Generic, TypeVar

from dsa110.errors import InputError as BadUserInput

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 50
_CURSOR_PREFIX = "offset:"
# The largest offset a cursor may hold: beyond any table, and far inside the 64-bit
# integers SQLite and PostgreSQL bind (a larger one made the driver raise, a 500).
MAX_CURSOR_OFFSET = 2**53


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError(text)
        digits = text[len(_CURSOR_PREFIX) :]
        # Only the form ``encode_cursor`` writes: ASCII digits (``int`` also takes " 3", "3_0").
        if not digits.isascii() or not digits.isdigit() or len(digits) > 16:
            raise ValueError(digits)
        offset = int(digits)
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise BadUserInput("malformed cursor", cursor=cursor[:64]) from exc
    if offset > MAX_CURSOR_OFFSET:
        raise BadUserInput("malformed cursor", cursor=cursor[:64])
    return offset


@dataclass(frozen=True)
class PageArgs:
    """The four Relay arguments, as the client sent them."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def validate(self, max_page_size: int) -> None:
        for name, value in (("first", self.first), ("last", self.last)):
            if value is not None and not 0 <= value <= max_page_size:
                raise BadUserInput(
                    f"`{name}` must be between 0 and {max_page_size}", argument=name, max=max_page_size
                )
        if self.first is not None and self.last is not None:
            raise BadUserInput("pass `first` or `last`, not both")

    @property
    def needs_total(self) -> bool:
        """Offsets from the end (``last`` without ``before``) need the total count first."""
        return self.last is not None and self.before is None


@dataclass(frozen=True)
class Window:
    """Rows ``[start, stop)`` of the ordered list (``stop`` None: to the end)."""

    start: int
    stop: int

    @property
    def limit(self) -> int:
        return self.stop - self.start


def resolve_window(args: PageArgs, total: int | None, max_page_size: int) -> Window:
    """Turn Relay arguments into offsets, following the Relay spec's algorithm."""
    args.validate(max_page_size)
    start = decode_cursor(args.after) + 1 if args.after is not None else 0
    if args.before is not None:
        stop = decode_cursor(args.before)
    elif total is not None:
        stop = total
    else:
        stop = start + (args.first if args.first is not None else DEFAULT_PAGE_SIZE)
    stop = max(stop, start)
    if args.first is not None:
        stop = min(stop, start + args.first)
    elif args.last is not None:
        start = max(start, stop - args.last)
    elif stop - start > max_page_size:
        stop = start + (DEFAULT_PAGE_SIZE if args.before is None else max_page_size)
    return Window(start, stop)


@dataclass
class Page(Generic[T]):
    """One page of an ordered list: its items, their offsets, and what lies around it."""

    items: list[T]
    start: int
    has_next: bool
    has_previous: bool
    total: int | None = None
