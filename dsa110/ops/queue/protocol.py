"""What a job's output means: every line is a log line; two prefixes also carry data.

* ``@@progress <fraction 0..1> <message>``: how far the job is (the message is optional);
* ``@@result <json>``: what the job made (a JSON value; the last one wins).

A job's stdout and stderr are one stream (stderr merged into stdout), split on newlines;
carriage returns (progress bars) are dropped and undecodable bytes replaced, so a line is
always text. A line longer than ``MAX_LINE_CHARS`` is cut (and says so), so one runaway
line cannot make a log unreadable.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

MAX_LINE_CHARS: Final = 10_000
MAX_RESULT_CHARS: Final = 1_000_000
PROGRESS: Final = "@@progress"
RESULT: Final = "@@result"
CUT: Final = " [line cut]"


@dataclass(frozen=True)
class Progress:
    fraction: float
    message: str | None


@dataclass(frozen=True)
class Result:
    value: Any


def clean(raw: bytes) -> str:
    """One output line as stored: decoded, without CR/LF, cut at ``MAX_LINE_CHARS``."""
    line = raw.decode("utf-8", errors="replace").replace("\r", "").rstrip("\n")
    line = line.replace("\x00", "")
    if len(line) > MAX_LINE_CHARS:
        line = line[: MAX_LINE_CHARS - len(CUT)] + CUT
    return line


def parse(line: str) -> Progress | Result | None:
    """The data a line carries, or None for an ordinary (or malformed) line."""
    if line.startswith(PROGRESS + " "):
        head, _, message = line[len(PROGRESS) + 1 :].strip().partition(" ")
        try:
            fraction = float(head)
        except ValueError:
            return None
        if not math.isfinite(fraction):
            return None
        return Progress(min(1.0, max(0.0, fraction)), message.strip()[:500] or None)
    if line.startswith(RESULT + " "):
        body = line[len(RESULT) + 1 :]
        if len(body) > MAX_RESULT_CHARS:
            return None
        try:
            return Result(json.loads(body))
        except (ValueError, RecursionError):
            return None
    return None


class LineSplitter:
    """Bytes in, complete lines out; a partial line waits for its end (or ``flush``).

    A line that grows past the limit before its newline is emitted cut at once, and the
    rest of it up to the newline is dropped, so memory stays bounded whatever the output.
    """

    def __init__(self, max_bytes: int = 4 * MAX_LINE_CHARS) -> None:
        self._buffer = b""
        self._skipping = False
        self._max = max_bytes

    def feed(self, data: bytes) -> list[str]:
        out: list[str] = []
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            piece, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            if self._skipping:
                self._skipping = False
                continue
            out.append(clean(piece))
        if len(self._buffer) > self._max:
            if not self._skipping:
                out.append(clean(self._buffer))
            self._buffer = b""
            self._skipping = True
        return out

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, b""
        if rest and not self._skipping:
            return [clean(rest)]
        return []
