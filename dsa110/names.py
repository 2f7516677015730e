"""Names and paths that users give (job, mosaic, region and key names; output paths).

A name may end up in a file name, a log line or a shell-visible job description, so it
is checked against an allow-list, not a deny-list: letters, digits and a few separators,
no path separators, no leading dot or dash, no ``..``. A relative path given by a user is
resolved (symlinks included) and must stay under one of the configured roots (the root
test is ``dsa110.ops.files.paths``, shared with every path the server reads). Refusals
are ``InputError`` with code ``BAD_NAME`` or ``BAD_PATH`` and the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Final

from dsa110.errors import InputError
from dsa110.ops.files.paths import real_roots, under

MAX_NAME: Final = 128
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+:@-]*")
"""File-safe names (jobs, mosaics, keys): what a file name may hold on any system."""
LABEL_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+:@#,()\[\]-]*")
"""Human labels (regions): as names, plus spaces, commas, brackets and ``#``."""


def _check(value: object, field: str, pattern: re.Pattern[str], limit: int, kind: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise InputError(f"`{field}` must be 1 to {limit} characters", code="BAD_NAME", field=field)
    if pattern.fullmatch(value) is None or ".." in value or value != value.strip():
        raise InputError(
            f"`{field}` is not a valid {kind}: use letters, digits and {_allowed(pattern)} "
            "(no path separators, no `..`, starting with a letter or digit)",
            code="BAD_NAME",
            field=field,
        )
    return value


def _allowed(pattern: re.Pattern[str]) -> str:
    return "`. _ + : @ # , ( ) [ ] -`" if pattern is LABEL_PATTERN else "`. _ + : @ -`"


def safe_name(value: object, field: str = "name", limit: int = MAX_NAME) -> str:
    """``value`` if it is a file-safe name (job, mosaic, key), else ``BAD_NAME``."""
    return _check(value, field, NAME_PATTERN, limit, "name")


def safe_label(value: object, field: str = "name", limit: int = MAX_NAME) -> str:
    """``value`` if it is an acceptable human label (region names), else ``BAD_NAME``."""
    return _check(value, field, LABEL_PATTERN, limit, "label")


def resolve_under(value: object, roots: Iterable[Path], field: str = "path") -> Path:
    """The real path of ``value`` (relative to the first root, or absolute) if it lies
    under one of ``roots`` once symlinks and ``..`` are resolved; else ``BAD_PATH``.

    The file need not exist yet (an output path); its existing ancestors are resolved.
    """
    if not isinstance(value, str) or not 0 < len(value) <= 1024 or "\x00" in value:
        raise InputError(f"`{field}` must be a path of 1 to 1024 characters", code="BAD_PATH", field=field)
    resolved_roots = real_roots(list(roots))
    if not resolved_roots:
        raise InputError(f"`{field}`: no output root is configured", code="BAD_PATH", field=field)
    given = PurePosixPath(value)
    candidate = Path(given) if given.is_absolute() else resolved_roots[0] / given
    real = candidate.resolve()
    if under(real, resolved_roots):
        return real
    raise InputError(
        f"`{field}` must lie under {', '.join(str(r) for r in resolved_roots)}", code="BAD_PATH", field=field
    )
