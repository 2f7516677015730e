"""Streaming files the database names, never outside the configured roots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.responses import FileResponse

from compat_rest.errors import not_found
from dsa110.ops.files.paths import resolve_stored


def data_file(path: str, roots: Path | Sequence[Path], *, media_type: str, filename: str) -> FileResponse:
    """``path`` (from the graph) as a download, if it is a regular file under ``roots``.

    :func:`dsa110.ops.files.paths.resolve_stored` decides: a row pointing at /etc/passwd,
    or at a link inside the roots that leads out of them, is answered 404 like a missing
    file, so the client learns nothing about the rest of the file system.
    """
    try:
        target = resolve_stored(path, [roots] if isinstance(roots, Path) else roots)
    except LookupError:
        raise not_found("the file is not on disk") from None
    return FileResponse(target, media_type=media_type, filename=filename)
