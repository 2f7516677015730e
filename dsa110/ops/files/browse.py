"""Directory listings for the QA browser: what is in a folder, one page at a time.

Entries are classified the way an astronomer looks at a pipeline folder: Measurement
Sets, calibration tables and other CASA tables (directories holding ``table.dat``), FITS
images, pictures, UVH5 files, notebooks and reports. Symbolic links are listed but never
followed: a link's target is only reachable through a path the roots allow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dsa110.ops.files.caltables import type_from_name
from dsa110.ops.files.paths import private_name

KINDS = ("directory", "ms", "caltable", "casatable", "fits", "image", "uvh5", "notebook", "report", "file")
_BY_SUFFIX = {
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".gif": "image",
    ".svg": "image",
    ".hdf5": "uvh5",
    ".uvh5": "uvh5",
    ".h5": "uvh5",
    ".ipynb": "notebook",
    ".html": "report",
    ".htm": "report",
}
PICTURE_MEDIA = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Entry:
    name: str
    path: Path
    kind: str
    size_bytes: int | None
    modified: datetime

    @property
    def is_dir(self) -> bool:
        return self.kind in ("directory", "ms", "caltable", "casatable")


def classify(path: Path, is_dir: bool) -> str:
    if is_dir:
        if (path / "table.dat").is_file():
            if path.name.endswith(".ms"):
                return "ms"
            return "caltable" if type_from_name(path.name) else "casatable"
        return "directory"
    return _BY_SUFFIX.get(path.suffix.lower(), "file")


@dataclass(frozen=True)
class Listing:
    path: Path
    entries: list[Entry]
    total: int
    counts: dict[str, int]


def list_directory(
    folder: Path, *, offset: int = 0, limit: int = 200, kinds: set[str] | None = None
) -> Listing:
    """One page of ``folder``'s entries, directories first, then by name (blocking I/O)."""
    entries: list[Entry] = []
    with os.scandir(folder) as scan:
        for item in scan:
            if private_name(item.name):  # the server's own files (hidden, the database)
                continue
            try:
                is_dir = item.is_dir(follow_symlinks=False)
                stat = item.stat(follow_symlinks=False)
            except OSError:
                continue
            path = Path(item.path)
            kind = classify(path, is_dir)
            entries.append(
                Entry(
                    name=item.name,
                    path=path,
                    kind=kind,
                    size_bytes=None if is_dir else stat.st_size,
                    modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
                )
            )
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.kind] = counts.get(entry.kind, 0) + 1
    if kinds:
        entries = [e for e in entries if e.kind in kinds]
    entries.sort(key=lambda e: (not e.is_dir, e.name))
    return Listing(path=folder, entries=entries[offset : offset + limit], total=len(entries), counts=counts)
