"""Streaming files the database names, never outside the data directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.responses import FileResponse

from compat_rest.errors import not_found


def data_file(path: str, data_dir: Path | Sequence[Path], *, media_type: str, filename: str) -> FileResponse:
    """``path`` (from the graph) as a download, if it is a regular file under ``data_dir``
    (or under one of several roots).

    Symlinks and ``..`` are resolved first, so a row pointing at /etc/passwd, or a link
    inside the data directory pointing out of it, is answered 404 like a missing file:
    the client learns nothing about the rest of the file system.
    """
    roots = [r.resolve() for r in ([data_dir] if isinstance(data_dir, Path) else data_dir)]
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    try:
        target = candidate.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise not_found("the file is not on disk") from None
    if not any(target.is_relative_to(root) for root in roots) or not target.is_file():
        raise not_found("the file is not on disk")
    return FileResponse(target, media_type=media_type, filename=filename)
