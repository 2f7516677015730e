"""Paths -> real files under the configured roots, or a clear refusal: the one place for it.

Two kinds of path reach the file system. A path **from the database** (an image's or a
mosaic's file, a QA file, an MS) is resolved by :func:`resolve_stored`: whatever the row
holds, the file served or opened is its real location (symlinks resolved), and only if
that lies under ``Settings.file_roots``; anything else reads as ``NOT_FOUND``, as if the
file were missing (a row pointing at ``/etc/passwd``, or at a link to it, serves nothing).
A path **from a client** goes through :func:`resolve_path` (an existing entry) or
:func:`resolve_new_path` (a file to write), with the rules below.

The legacy server opened whatever path a client sent (``/api/ms/{path}``, the QA browser,
``?data_dir=``). Here a path is accepted only if both the path as written and its real
location (symlinks resolved) lie under one of ``Settings.file_roots``:

* NUL or other control characters, or a ``..`` segment: refused as bad input
  (``BAD_PATH``), before the file system is touched;
* anything else that is not an existing entry under a root - missing, outside every root,
  or a symlink leading out of one - is ``NOT_FOUND`` with one message, so a client learns
  nothing about the file system beyond the roots;
* the server's own files under a root are ``NOT_FOUND`` the same way (:func:`private`): the
  data directory holds the database (API key hashes, webhook secrets, the audit log) and
  hidden entries (``.casa``, ``.cache``, locks), none of them a client's to read or write.

Legacy clients put an absolute path in the URL with its leading ``/`` dropped
(``/api/ms/stage/x.ms/metadata``); a relative path is therefore tried as absolute first,
then relative to each root.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Sequence
from enum import Enum
from pathlib import Path, PurePosixPath

from dsa110.errors import InputError, NotFoundError

MAX_PATH_CHARS = 4096
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
"""What no path, name or key a client sends may hold (C0 controls and DEL)."""
_DATABASE_FILE = re.compile(r"\.(sqlite3?|db)(-wal|-shm|-journal)?$", re.IGNORECASE)
NOT_UNDER_ROOTS = "no such file or directory under the configured data roots"


class Kind(Enum):
    ANY = "any"
    FILE = "file"
    DIRECTORY = "directory"
    TABLE = "table"  # a CASA table: a directory holding table.dat


class BadPath(InputError):
    code = "BAD_PATH"


def check_text(raw: object, field: str = "path") -> str:
    """The path as text, or ``BadPath`` for what no file name needs."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_PATH_CHARS:
        raise BadPath(f"`{field}` must be a path of 1 to {MAX_PATH_CHARS} characters", field=field)
    if CONTROL_CHARACTERS.search(raw):
        raise BadPath(f"`{field}` must not contain control characters", field=field)
    if ".." in PurePosixPath(raw).parts:
        raise BadPath(f"`{field}` must not contain `..` segments", field=field)
    return raw


def under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def private_name(name: str) -> bool:
    """A hidden entry, or an SQLite database or one of its journals: never served to clients."""
    return name.startswith(".") or _DATABASE_FILE.search(name) is not None


def private(path: Path, roots: Sequence[Path]) -> bool:
    """Whether ``path`` is, or lies inside, a private entry (:func:`private_name`) of its root."""
    for root in roots:
        if path == root or path.is_relative_to(root):
            return any(private_name(part) for part in path.relative_to(root).parts)
    return False


def _candidates(raw: str, roots: Sequence[Path]) -> list[Path]:
    given = Path(raw)
    if given.is_absolute():
        return [given]
    return [Path("/") / given, *(root / given for root in roots)]


def _is_kind(path: Path, kind: Kind) -> bool:
    if kind is Kind.FILE:
        return path.is_file()
    if kind is Kind.DIRECTORY:
        return path.is_dir()
    if kind is Kind.TABLE:
        return path.is_dir() and (path / "table.dat").is_file()
    return True


def real_roots(roots: Sequence[Path]) -> list[Path]:
    return [Path(os.path.realpath(root)) for root in roots]


def _real_under(literal: Path, roots: Sequence[Path], kind: Kind) -> Path | None:
    """``literal``'s real location if it exists, is a ``kind`` and lies under ``roots`` (real)."""
    try:
        real = literal.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    return real if under(real, roots) and _is_kind(real, kind) else None


def resolve_path(raw: object, roots: Sequence[Path], kind: Kind = Kind.ANY, field: str = "path") -> Path:
    """The real, existing path ``raw`` (from a client) names under ``roots`` (blocking: call in a thread)."""
    text = check_text(raw, field)
    resolved_roots = real_roots(roots)
    for candidate in _candidates(text, resolved_roots):
        literal = Path(os.path.normpath(candidate))
        if not under(literal, resolved_roots) or private(literal, resolved_roots):
            continue
        real = _real_under(literal, resolved_roots, kind)
        if real is not None and not private(real, resolved_roots):
            return real
    raise NotFoundError(NOT_UNDER_ROOTS, path=text[:256])


def _new_target(literal: Path, roots: Sequence[Path]) -> Path | None:
    """Where a new file ``literal`` would really be written, if that is under ``roots`` and can
    be: a dangling symlink on the way would lead wherever it points once made, and a file on
    the way cannot hold a directory (its ``mkdir`` would fail after the checks: a 500)."""
    parent = literal.parent
    existing = parent
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            return None
        existing = existing.parent
    if not existing.is_dir():
        return None
    target = Path(existing.resolve()) / parent.relative_to(existing) / literal.name
    inside = under(existing.resolve(), roots) and not literal.is_symlink()
    return target if inside and not private(target, roots) else None


def resolve_stored(raw: object, roots: Sequence[Path], kind: Kind = Kind.FILE) -> Path:
    """The real location of a path the database holds, if it is an existing ``kind`` under
    ``roots``; else ``NotFoundError`` (blocking: call in a thread).

    A relative path is taken under the first root (the data directory). Nothing about the
    row is the caller's input, so every defect (not text, control characters, missing,
    outside the roots, a symlink leading out) is the same ``NOT_FOUND``.
    """
    if not isinstance(raw, str) or not raw or len(raw) > MAX_PATH_CHARS or CONTROL_CHARACTERS.search(raw):
        raise NotFoundError(NOT_UNDER_ROOTS)
    resolved_roots = real_roots(roots)
    given = Path(raw)
    candidate = given if given.is_absolute() or not resolved_roots else resolved_roots[0] / given
    real = _real_under(candidate, resolved_roots, kind)
    if real is None:
        raise NotFoundError(NOT_UNDER_ROOTS)
    return real


def resolve_new_path(raw: object, roots: Sequence[Path], field: str = "path") -> Path:
    """Where to write a new file ``raw``: its parent must exist (or be creatable) under a root."""
    text = check_text(raw, field)
    resolved_roots = real_roots(roots)
    for candidate in _candidates(text, resolved_roots):
        literal = Path(os.path.normpath(candidate))
        if not under(literal, resolved_roots) or literal in resolved_roots:
            continue
        if private(literal, resolved_roots):
            continue
        try:
            target = _new_target(literal, resolved_roots)
        except OSError as error:
            # The probes of a name no file system can hold (a component over NAME_MAX bytes)
            # raise rather than answer False: the client's input, not a server fault.
            if error.errno == errno.ENAMETOOLONG:
                raise BadPath(f"`{field}` holds a name too long for the file system", field=field) from None
            continue
        if target is not None:
            return target
    raise NotFoundError("the output path is not under the configured data roots", path=text[:256])
