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


INVALID_JSON = "INVALID_JSON"
NESTED_TOO_DEEP = "NESTED_TOO_DEEP"
INVALID_UNICODE = "INVALID_UNICODE"


class JsonFault(ValueError):
    """Why a client's JSON text is refused: ``code`` is ``INVALID_JSON`` (malformed, not
    UTF-8, ``NaN``/``Infinity``), ``NESTED_TOO_DEEP`` or ``INVALID_UNICODE`` (a string holding
    a lone UTF-16 surrogate such as ``"\\ud800"``, which no UTF-8 answer can carry)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def strict_loads(data: str | bytes, max_depth: int) -> Any:
    """:func:`loads`, then the value checked: arrays and objects nested at most ``max_depth``
    levels (the outermost is level 1) and every string, keys too, real text; else
    :class:`JsonFault`. The check is iterative, so no nesting can exhaust the stack (the
    parser's own ``RecursionError`` is ``NESTED_TOO_DEEP`` too). One rule for /graphql's
    bodies and messages and for /api's bodies and JSON query parameters."""
    try:
        value = loads(data)
    except RecursionError:
        raise JsonFault(NESTED_TOO_DEEP) from None
    except ValueError:  # malformed, not UTF-8 (UnicodeDecodeError), or NaN/Infinity (NotJson)
        raise JsonFault(INVALID_JSON) from None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _require_text(item)
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise JsonFault(NESTED_TOO_DEEP)
            if isinstance(item, dict):
                for key, child in item.items():
                    _require_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return value


def _require_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonFault(INVALID_UNICODE) from None
