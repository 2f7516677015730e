"""JSON carried in a query parameter (``?filter={...}``, ``?coordinates=[[...]]``): strict and bounded.

A request body is parsed by the strict parser and its size capped before any route runs;
a query parameter is text the client controls just as fully, and Python's ``json.loads``
takes ``NaN`` and ``Infinity`` (not JSON: they reach filters as floats nothing compares
with), nests until the interpreter's recursion limit, and reads any length. So a JSON
parameter is refused, in the error envelope with ``details.parameter``, when it is

=====================  ======  ===========================================================
code                   status  when
=====================  ======  ===========================================================
``PARAMETER_TOO_LONG`` 400     longer than the parameter's limit (checked before parsing)
``INVALID_JSON``       400     not JSON text: malformed, or ``NaN``/``Infinity``
``NESTED_TOO_DEEP``    400     arrays and objects nested deeper than the parameter needs
``INVALID_UNICODE``    400     a string holding a lone UTF-16 surrogate (``"\\ud800"``)
=====================  ======  ===========================================================

the codes ``/graphql`` gives the same faults in a body (``server.graphql_http``). JSON of
the wrong shape for the parameter (an array where an object belongs) is the caller's 422.
"""

from __future__ import annotations

from typing import Any

from compat_rest.errors import ApiError
from dsa110 import json_text


def json_parameter(name: str, text: str, max_chars: int, max_depth: int) -> Any:
    """The value of the JSON text ``text`` given as query parameter ``name``, or ``ApiError``."""
    if len(text) > max_chars:
        raise _refused("PARAMETER_TOO_LONG", f"`{name}` must be at most {max_chars} characters", name)
    try:
        value = json_text.loads(text)
    except RecursionError:
        raise _too_deep(name, max_depth) from None
    except ValueError:  # malformed, or NaN/Infinity (json_text.NotJson)
        raise _refused("INVALID_JSON", f"`{name}` is not valid JSON", name) from None
    _check(value, name, max_depth)
    return value


def _check(value: Any, name: str, max_depth: int) -> None:
    """Nesting and text of a parsed value: iterative, so no depth can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item, name)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise _too_deep(name, max_depth)
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key, name)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_text(text: str, name: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _refused(
            "INVALID_UNICODE", f"a string in `{name}` holds a lone UTF-16 surrogate, which is not text", name
        ) from None


def _too_deep(name: str, max_depth: int) -> ApiError:
    return _refused(
        "NESTED_TOO_DEEP", f"`{name}` nests arrays and objects deeper than {max_depth} levels", name
    )


def _refused(code: str, message: str, name: str) -> ApiError:
    return ApiError(400, code, message, {"parameter": name})
