"""JSON a client sends to a REST route: strict and bounded.

A JSON query parameter (``?filter={...}``, ``?coordinates=[[...]]``) and a request body
are text the client controls fully, and Python's ``json.loads`` takes ``NaN`` and
``Infinity`` (not JSON: they reach filters as floats nothing compares with), nests until
the interpreter's recursion limit, and keeps strings no database or encoder can hold. So
both are parsed by the strict parser (``dsa110.json_text``) and refused, in the error
envelope with ``details.parameter`` (a parameter) or ``details.location: "body"`` (a
body), when they are

=====================  ======  ===========================================================
code                   status  when
=====================  ======  ===========================================================
``PARAMETER_TOO_LONG`` 400     longer than the parameter's limit (checked before parsing)
``INVALID_JSON``       400     not JSON text: malformed, ``NaN``/``Infinity``, not UTF-8
``NESTED_TOO_DEEP``    400     arrays and objects nested deeper than the parameter (body) needs
``INVALID_UNICODE``    400     a string holding a lone UTF-16 surrogate (``"\\ud800"``)
=====================  ======  ===========================================================

the codes ``/graphql`` gives the same faults in a body (``server.graphql_http``). A body's
size is capped before any route runs (413 ``PAYLOAD_TOO_LARGE``), so ``PARAMETER_TOO_LONG``
is a parameter's alone. JSON of the wrong shape (an array where an object belongs) is the
caller's 422.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from compat_rest.errors import ApiError
from dsa110 import json_text


def json_parameter(name: str, text: str, max_chars: int, max_depth: int) -> Any:
    """The value of the JSON text ``text`` given as query parameter ``name``, or ``ApiError``."""
    if len(text) > max_chars:
        raise ApiError(
            400, "PARAMETER_TOO_LONG", f"`{name}` must be at most {max_chars} characters", {"parameter": name}
        )
    return _strict_json(text, _Source(f"`{name}`", {"parameter": name}), max_depth)


def json_body(data: bytes, max_depth: int) -> Any:
    """The value of a request body holding JSON text (UTF-8), or ``ApiError``."""
    return _strict_json(data, _Source("the request body", {"location": "body"}), max_depth)


@dataclass(frozen=True, slots=True)
class _Source:
    """Where the JSON came from: how messages name it, and the refusal's ``details``."""

    name: str
    details: Mapping[str, Any]

    def refused(self, code: str, message: str) -> ApiError:
        return ApiError(400, code, message, self.details)

    def too_deep(self, max_depth: int) -> ApiError:
        return self.refused(
            "NESTED_TOO_DEEP", f"{self.name} nests arrays and objects deeper than {max_depth} levels"
        )


def _strict_json(text: str | bytes, source: _Source, max_depth: int) -> Any:
    try:
        return json_text.strict_loads(text, max_depth)
    except json_text.JsonFault as fault:
        if fault.code == json_text.NESTED_TOO_DEEP:
            raise source.too_deep(max_depth) from None
        if fault.code == json_text.INVALID_UNICODE:
            message = f"a string in {source.name} holds a lone UTF-16 surrogate, which is not text"
        else:
            message = f"{source.name} is not valid JSON"
        raise source.refused(fault.code, message) from None
