"""Signing deliveries the Standard Webhooks way (standardwebhooks.com), so receivers can use its libraries.

Headers: ``webhook-id`` (the idempotency key: the same on every retry of one event),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``:
``v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>``, the key being the base64
part of the subscription's ``whsec_...`` secret. The receiver recomputes it over the
raw body, compares in constant time, and refuses timestamps far from its clock (replays).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

SECRET_PREFIX: Final = "whsec_"
SECRET_BYTES: Final = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
        "idempotency-key": message_id,
    }


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """True when ``headers`` sign ``body`` with ``secret`` (any of the ``v1,`` signatures listed)."""
    expected = signature(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    return any(hmac.compare_digest(expected, given) for given in headers["webhook-signature"].split())
