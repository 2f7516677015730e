"""Request parameters: declared once, validated on every request, described in OpenAPI.

A route lists its :class:`Param` objects (path, query or JSON body). The same
declaration parses the request (strings for path and query, JSON values for the body),
enforces types, ranges, lengths and enums with a 422 in the error envelope, and yields
the parameter's JSON Schema for ``/api/openapi.json``, so the document cannot drift from
what the server accepts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from compat_rest.errors import validation_error
from dsa110.ops.files.paths import CONTROL_CHARACTERS

MAX_STRING = 512
# Control characters are never meaningful in these parameters, and PostgreSQL refuses NUL
# in text: reject them here as bad input rather than let them reach the database.
NO_CONTROL_PATTERN = "^[^\\u0000-\\u001f\\u007f]*$"
_INTEGER = re.compile(r"[+-]?\d{1,15}")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}

Args = dict[str, Any]


@dataclass(frozen=True)
class Param:
    """One request parameter. ``kind``: integer, number, string, boolean, date-time, object."""

    name: str
    kind: str
    where: str = "query"  # "path" | "query" | "body"
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    enum: tuple[str, ...] | None = None
    max_length: int = MAX_STRING
    fields: tuple[Param, ...] = field(default=())
    description: str = ""

    # --- parsing --------------------------------------------------------------------

    def from_text(self, raw: str) -> Any:
        """A path or query value (always a string on the wire)."""
        kind = self.kind
        if kind == "integer":
            if not _INTEGER.fullmatch(raw.strip()):
                raise self._invalid("must be an integer")
            return self._in_range(int(raw))
        if kind == "number":
            try:
                value = float(raw)
            except ValueError:
                raise self._invalid("must be a number") from None
            return self._in_range(value)
        if kind == "boolean":
            lowered = raw.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise self._invalid("must be true or false")
        if kind == "date-time":
            return self._datetime(raw)
        if kind == "string":
            return self._string(raw)
        raise self._invalid("cannot be given in the URL")

    def from_json(self, value: Any) -> Any:
        """A JSON body value, already decoded."""
        kind = self.kind
        if kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise self._invalid("must be an integer")
            return self._in_range(value)
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self._invalid("must be a number")
            return self._in_range(float(value))
        if kind == "boolean":
            if not isinstance(value, bool):
                raise self._invalid("must be true or false")
            return value
        if kind in ("string", "date-time"):
            if not isinstance(value, str):
                raise self._invalid("must be a string")
            return self._datetime(value) if kind == "date-time" else self._string(value)
        if kind == "object":
            if not isinstance(value, dict):
                raise self._invalid("must be a JSON object")
            return parse_object(self.fields, value)
        if kind == "json":
            # Free-form JSON (a region's coordinates): checked by the graph, which owns its meaning.
            if not isinstance(value, dict | list):
                raise self._invalid("must be a JSON object or array")
            return value
        raise self._invalid("has an unsupported type")

    def _in_range(self, value: float) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise self._invalid("must be a finite number")
        if self.minimum is not None and value < self.minimum:
            raise self._invalid(f"must be >= {self.minimum:g}")
        if self.exclusive_minimum is not None and value <= self.exclusive_minimum:
            raise self._invalid(f"must be > {self.exclusive_minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise self._invalid(f"must be <= {self.maximum:g}")
        if self.kind == "integer" and abs(value) > 2**31 - 1:
            raise self._invalid("is out of range")
        return value

    def _string(self, value: str) -> str:
        if len(value) > self.max_length:
            raise self._invalid(f"must be at most {self.max_length} characters")
        if CONTROL_CHARACTERS.search(value):
            raise self._invalid("must not contain control characters")
        if self.enum is not None and value not in self.enum:
            raise self._invalid(f"must be one of {', '.join(self.enum)}")
        return value

    def _datetime(self, value: str) -> str:
        """ISO 8601 -> ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``; a naive time is taken as UTC."""
        text = value.strip()
        if len(text) > 64 or CONTROL_CHARACTERS.search(text):
            raise self._invalid("must be an ISO 8601 time")
        try:
            parsed = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        except ValueError:
            raise self._invalid("must be an ISO 8601 time, e.g. 2025-10-24T14:00:00Z") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            utc = parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise self._invalid("is out of range") from None
        return utc.isoformat().replace("+00:00", "Z")

    def _invalid(self, message: str) -> Exception:
        return validation_error(
            f"{self.where} parameter `{self.name}` {message}", parameter=self.name, location=self.where
        )

    # --- OpenAPI ----------------------------------------------------------------------

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any]
        if self.kind == "date-time":
            schema = {"type": "string", "format": "date-time"}
        elif self.kind == "json":
            schema = {"type": ["object", "array"]}
        elif self.kind == "object":
            schema = {
                "type": "object",
                "properties": {p.name: p.json_schema() for p in self.fields},
            }
            required = [p.name for p in self.fields if p.required]
            if required:
                schema["required"] = required
        else:
            schema = {"type": self.kind}
        if self.kind == "string":
            schema["maxLength"] = self.max_length
            schema["pattern"] = NO_CONTROL_PATTERN
            if self.enum is not None:
                schema["enum"] = list(self.enum)
        for key, value in (
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("exclusiveMinimum", self.exclusive_minimum),
        ):
            if value is not None:
                schema[key] = value
        if self.kind == "integer":
            schema.setdefault("minimum", -(2**31) + 1)
            schema.setdefault("maximum", 2**31 - 1)
        if self.default is not None:
            schema["default"] = self.default
        if self.description:
            schema["description"] = self.description
        return schema


def parse_object(params: tuple[Param, ...], value: dict[str, Any]) -> Args:
    """Validate a JSON object against ``params``; unknown keys are ignored, nulls mean absent."""
    out: Args = {}
    for param in params:
        raw = value.get(param.name)
        if raw is None:
            if param.required:
                raise validation_error(
                    f"body field `{param.name}` is required", parameter=param.name, location="body"
                )
            out[param.name] = param.default
        else:
            out[param.name] = param.from_json(raw)
    return out


# --- constructors: what a route declaration reads like ----------------------------------


def Int(
    name: str, default: int | None = None, *, ge: int | None = None, le: int | None = None, **kw: Any
) -> Param:
    return Param(name, "integer", default=default, minimum=ge, maximum=le, **kw)


def Float(
    name: str, default: float | None = None, *, ge: float | None = None, le: float | None = None, **kw: Any
) -> Param:
    return Param(name, "number", default=default, minimum=ge, maximum=le, **kw)


def Str(name: str, default: str | None = None, **kw: Any) -> Param:
    return Param(name, "string", default=default, **kw)


def Bool(name: str, default: bool | None = None, **kw: Any) -> Param:
    return Param(name, "boolean", default=default, **kw)


def Time(name: str, **kw: Any) -> Param:
    return Param(name, "date-time", **kw)


def Obj(name: str, *fields: Param, **kw: Any) -> Param:
    # Its fields are body fields too: a bad one is named as such, not as a query parameter.
    return Param(name, "object", fields=tuple(replace(f, where="body") for f in fields), where="body", **kw)


def Json(name: str, **kw: Any) -> Param:
    return Param(name, "json", **kw)


def PathInt(name: str, description: str = "") -> Param:
    return Param(name, "integer", where="path", required=True, minimum=0, description=description)


def PathStr(name: str, description: str = "", max_length: int = MAX_STRING) -> Param:
    return Param(name, "string", where="path", required=True, max_length=max_length, description=description)
