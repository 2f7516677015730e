"""Relay global ids: an opaque base64 of ``"<Type>:<key>"``.

Every node also exposes its natural key (``sourceId``, ``groupId``, ``imageId``...), so
the global id only has to be unique and stable, not readable.
"""

from __future__ import annotations

import base64
import binascii

from dsa110.errors import InputError as BadUserInput


def encode_global_id(type_name: str, key: int | str) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode().rstrip("=")


def decode_global_id(global_id: str) -> tuple[str, str]:
    """Return ``(type_name, key)``; malformed ids are a client error, never a crash."""
    if not global_id or len(global_id) > 256:
        raise BadUserInput("malformed node id", id=global_id[:64])
    padded = global_id + "=" * (-len(global_id) % 4)
    try:
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise BadUserInput("malformed node id", id=global_id[:64]) from exc
    type_name, sep, key = text.partition(":")
    if not sep or not type_name or not key:
        raise BadUserInput("malformed node id", id=global_id[:64])
    return type_name, key


def decode_int_key(key: str) -> int:
    try:
        value = int(key)
    except ValueError as exc:
        raise BadUserInput("malformed node id") from exc
    if value < 0 or value > 2**62:
        raise BadUserInput("malformed node id")
    return value
