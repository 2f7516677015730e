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
(``SECRET_KEY``: token, password, api_key, ...) is redacted wherever it appears. So are,
in a URL anywhere in a text, its credentials (all before the authority's last ``@``: a
``user:password``, a token alone, a password holding an ``@``) and the values of its query
and fragment parameters that such a key names (``?access_token=``, ``#id_token=``,
``?sig=``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import unquote_plus, urlsplit, urlunsplit

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
    r"secret|token|passw|pwd|passphrase|api[_-]?key|apikey|private[_-]?key|credential|authorization"
    r"|bearer|cookie|session[_-]?id|signing[_-]?key|signature$|webhook[_-]?url|dsn$|^auth$|^sig$",
    re.IGNORECASE,
)
"""A key of a free-form argument (JSON) or a URL's query that names a secret: its value is
redacted anywhere. (``^sig$``, ``signature$``: a signed URL's signature, S3's or Azure's.)"""

_SECRET_PARAMETER: Final = re.compile(r"^key$", re.IGNORECASE)
"""A URL query parameter that is a secret though, as a JSON key, it would not be (``?key=``:
an API key in Google's and others' URLs)."""

_URL: Final = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>\S*)")
"""A URL in a text: a scheme, ``://`` and all up to the next white space."""


def redact(operation: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``arguments`` of ``operation`` as the audit log may keep them: declared secrets reduced
    (``SENSITIVE_ARGUMENTS``); secret-named keys, and URL credentials and secret parameters in
    any text, redacted anywhere."""
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
        return redact_urls(value) if "://" in value else value
    if depth >= MAX_DEPTH:
        return "..."  # deeper than the audit summary keeps anyway
    if isinstance(value, dict):
        return {k: _scrub(k, v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST:
            return f"[{len(value)} items]"  # the audit summary keeps only the count
        return [_scrub(None, v, depth + 1) for v in value]
    return value


def redact_urls(text: str) -> str:
    """``text`` with each URL in it as :func:`_redact_url` keeps it."""
    return _URL.sub(lambda match: _redact_url(match["scheme"], match["rest"]), text)


def _redact_url(scheme: str, rest: str) -> str:
    """One URL with its credentials and its secret-named parameters' values redacted; one that
    urllib cannot read (a bad IPv6 host, a port that is no number: perhaps a password with a
    ``/`` in it) keeps only its scheme."""
    try:
        parts = urlsplit(scheme + rest)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        return f"{scheme}{REDACTED}"
    _userinfo, at, host = parts.netloc.rpartition("@")
    netloc = f"{REDACTED}@{host}" if at else parts.netloc
    query, fragment = _redact_parameters(parts.query), _redact_parameters(parts.fragment)
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return scheme + rest  # nothing secret: as written (urlunsplit may normalise)
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=fragment))


def _redact_parameters(query: str) -> str:
    """``a=1&token=x`` -> ``a=1&token=[redacted]``: the other parameters kept as written."""
    if "=" not in query:
        return query
    kept = []
    for parameter in query.split("&"):
        key, equals, value = parameter.partition("=")
        name = unquote_plus(key)
        secret = equals and value and (SECRET_KEY.search(name) or _SECRET_PARAMETER.search(name))
        kept.append(f"{key}={REDACTED}" if secret else parameter)
    return "&".join(kept)
