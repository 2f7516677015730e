"""Streaming files the database names, never outside the data directory."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import FileResponse

from compat_rest.errors import not_found


def data_file(path: str, data_dir: Path, *, media_type: str, filename: str) -> FileResponse:
    """``path`` (from the graph) as a download, if it is a regular file under ``data_dir``.

    Symlinks and ``..`` are resolved first, so a row pointing at /etc/passwd, or a link
    inside the data directory pointing out of it, is answered 404 like a missing file:
    the client learns nothing about the rest of the file system.
    """
    root = data_dir.resolve()
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        target = candidate.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise not_found("the file is not on disk") from None
    if not target.is_relative_to(root) or not target.is_file():
        raise not_found("the file is not on disk")
    return FileResponse(target, media_type=media_type, filename=filename)
