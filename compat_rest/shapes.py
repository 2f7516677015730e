"""Response schemas (JSON Schema 2020-12, as OpenAPI 3.1 uses) written as small expressions.

Routes declare what they answer with these helpers; the OpenAPI document publishes them
and the property-based test checks every response against them.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

NUM: Schema = {"type": "number"}
INT: Schema = {"type": "integer"}
STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time", "description": "ISO 8601 UTC with Z"}
ANY: Schema = {}


def null(schema: Schema) -> Schema:
    """The same value, or JSON null."""
    if not schema:
        return schema
    kind = schema.get("type")
    if kind is None:
        return {"anyOf": [schema, {"type": "null"}]}
    kinds = kind if isinstance(kind, list) else [kind]
    return {**schema, "type": [*kinds, "null"]}


def obj(**properties: Schema) -> Schema:
    """An object with exactly these documented fields, all present (values may be null)."""
    return {"type": "object", "properties": properties, "required": list(properties)}


def arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}
