"""JSON text as RFC 8259 defines it, for what clients send.

Python's ``json.loads`` also accepts ``NaN``, ``Infinity`` and ``-Infinity``, which are
not JSON: a client's value of that kind would reach filters and stored rows as a float no
comparison or JSON answer can hold. Request bodies and WebSocket messages are parsed here,
so those literals are refused like any other malformed JSON.
"""

from __future__ import annotations

import json
from typing import Any


class NotJson(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity``: accepted by Python's parser, not JSON."""


def _refuse(literal: str) -> Any:
    raise NotJson(f"{literal} is not a JSON value")


def loads(data: str | bytes) -> Any:
    """``json.loads`` refusing the non-JSON literals; raises ``ValueError`` for anything malformed."""
    return json.loads(data, parse_constant=_refuse)
