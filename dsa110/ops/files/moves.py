"""Moving a product from the staging area to the published area without ever half-moving it.

On one filesystem a product moves with a single ``rename`` (atomic: it is either at the
old path or at the new one). Across filesystems (the legacy layout: SSD staging, HDD
products) it is copied into a hidden ``.<name>.partial-<random>`` entry beside the
destination, checked (same files, same sizes), renamed into place (atomic on the
destination filesystem) and only then removed from staging. If anything fails before the
final rename, the partial copy is deleted and the staged files are untouched.

Before moving, a product containing a symbolic link that leads outside the staging area
is refused: publishing must not carry a link to arbitrary files into the products area.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
import uuid
from pathlib import Path

from dsa110.ops.files.paths import under


class MoveRefused(RuntimeError):
    """The product cannot be moved; nothing was changed."""


def _tree(path: Path) -> dict[str, int]:
    """Relative path -> size (-1 for a directory, -2 for a link) of every entry under ``path``."""
    if not path.is_dir() or path.is_symlink():
        return {"": path.lstat().st_size}
    entries: dict[str, int] = {}
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            full = Path(folder) / name
            rel = str(full.relative_to(path))
            if full.is_symlink():
                entries[rel] = -2
            elif full.is_dir():
                entries[rel] = -1
            else:
                entries[rel] = full.lstat().st_size
    return entries


def check_links(path: Path, staging_root: Path) -> None:
    """Refuse a product holding a symlink whose target is outside ``staging_root``."""
    candidates = [path] if path.is_symlink() else []
    if path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):
            candidates.extend(Path(folder) / n for n in dirs + files if (Path(folder) / n).is_symlink())
    for link in candidates:
        target = Path(os.path.realpath(link))
        if not under(target, [staging_root]):
            raise MoveRefused(f"{link.relative_to(path.parent)} links outside the staging area")


def free_destination(folder: Path, name: str) -> Path:
    """``folder/name``, or ``name_<unix time>`` (then ``_<n>``) when that is taken."""
    dest = folder / name
    if not os.path.lexists(dest):
        return dest
    stamp = int(time.time())
    for n in range(1000):
        suffix = f"_{stamp}" if n == 0 else f"_{stamp}_{n}"
        candidate = folder / f"{name}{suffix}"
        if not os.path.lexists(candidate):
            return candidate
    raise MoveRefused(f"no free name for {name} in the products area")


def _copy(src: Path, dest: Path) -> None:
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dest, symlinks=True)
    else:
        shutil.copy2(src, dest, follow_symlinks=False)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def move_product(src: Path, dest_folder: Path, staging_root: Path, dest: Path | None = None) -> Path:
    """Move ``src`` into ``dest_folder`` (created if needed) and return where it now is.

    ``dest``: the path in ``dest_folder`` chosen beforehand (``free_destination``, recorded
    by the publisher so that a publication whose process died can be told apart); refused
    if it was taken meanwhile. None: the first free name, chosen here.
    """
    if not os.path.lexists(src):
        raise MoveRefused("the staged files are not on disk")
    check_links(src, staging_root)
    dest_folder.mkdir(parents=True, exist_ok=True)
    if dest is None:
        dest = free_destination(dest_folder, src.name)
    elif dest.parent != dest_folder or os.path.lexists(dest):
        raise MoveRefused(f"{dest.name} was taken in the products area meanwhile; retry the publication")
    try:
        os.rename(src, dest)
        return dest
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    partial = dest_folder / f".{src.name}.partial-{uuid.uuid4().hex[:12]}"
    try:
        _copy(src, partial)
        if _tree(partial) != _tree(src):
            raise MoveRefused("the copy in the products area does not match the staged files")
        os.rename(partial, dest)
    except BaseException:
        if os.path.lexists(partial):
            _remove(partial)
        raise
    _remove(src)
    return dest
