"""Secrets never reach the audit log: the sensitive arguments, declared once, redacted.

The audit log keeps each mutation's arguments as the client wrote them
(``schema.permissions``), and admins read them back (``auditLog.arguments``). Some
arguments are secrets: a webhook URL's path often is one (a Slack hook's
``/services/T000/B000/<token>``), which is why the graph shows only its ``urlOrigin``.
``SENSITIVE_ARGUMENTS`` declares them per mutation (GraphQL field name -> argument path,
dotted through input objects, -> how much of the value may be kept); :func:`redact`
applies it before a record is made, so the secret is never stored, logged or returned.

Free-form JSON arguments (a job's ``params``, the streaming ``config``, a product's
``metadata``) cannot be declared field by field, so a key that names a secret
(``SECRET_KEY``: token, password, api_key, ...) is redacted wherever it appears, and so is
the user:password part of a URL in any text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from dsa110.auth.audit import MAX_DEPTH, MAX_LIST

REDACTED: Final = "[redacted]"


def url_origin(value: Any) -> str:
    """``scheme://host[:port]`` of a URL, as ``WebhookSubscription.urlOrigin`` shows it; the
    path, query, fragment and any credentials are dropped."""
    if not isinstance(value, str):
        return REDACTED
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED
    if not parts.scheme or not host:
        return REDACTED
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def redacted(_value: Any) -> str:
    return REDACTED


SENSITIVE_ARGUMENTS: Final[Mapping[str, Mapping[str, Callable[[Any], Any]]]] = {
    # The URL's path is often the secret (Slack, Teams, Discord hooks): keep the origin.
    "createWebhookSubscription": {"url": url_origin},
}
"""Mutation (GraphQL field name) -> argument path (``a`` or ``input.a``) -> what is kept.

Checked against the schema by the tests: a path here names an argument that exists. A new
mutation taking a secret (a URL with a token, a password, a key) must be listed."""

SECRET_KEY: Final = re.compile(
    r"secret|token|passw|api[_-]?key|apikey|private[_-]?key|credential|authorization|bearer|cookie"
    r"|session[_-]?id|signing[_-]?key|webhook[_-]?url|dsn$",
    re.IGNORECASE,
)
"""A key of a free-form argument (JSON) that names a secret: its value is redacted anywhere."""

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s:]*:[^/@\s]*@")


def redact(operation: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``arguments`` of ``operation`` as the audit log may keep them: declared secrets reduced
    (``SENSITIVE_ARGUMENTS``), secret-named keys and URL credentials anywhere redacted."""
    out = {key: _scrub(key, value) for key, value in arguments.items()}
    for path, keep in SENSITIVE_ARGUMENTS.get(operation, {}).items():
        _apply(out, path.split("."), keep)
    return out


def _apply(values: Any, path: list[str], keep: Callable[[Any], Any]) -> None:
    if isinstance(values, list):
        for item in values:
            _apply(item, path, keep)
        return
    if not isinstance(values, dict) or path[0] not in values:
        return
    if len(path) == 1:
        if values[path[0]] is not None:
            values[path[0]] = keep(values[path[0]])
    else:
        _apply(values[path[0]], path[1:], keep)


def _scrub(key: Any, value: Any, depth: int = 0) -> Any:
    if isinstance(key, str) and SECRET_KEY.search(key) and value is not None:
        return REDACTED
    if isinstance(value, str):
        return _URL_CREDENTIALS.sub(r"\g<scheme>[redacted]@", value)
    if depth >= MAX_DEPTH:
        return "..."  # deeper than the audit summary keeps anyway
    if isinstance(value, dict):
        return {k: _scrub(k, v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST:
            return f"[{len(value)} items]"  # the audit summary keeps only the count
        return [_scrub(None, v, depth + 1) for v in value]
    return value
