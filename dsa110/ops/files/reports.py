"""An image's catalog-validation report as a self-contained HTML page, and where it may be written.

The legacy QA (``qa/html_reports``) wrote ``state/qa/reports/<image_stem>_validation_report.html``
and took an ``output_path`` from the client that it opened as given. Here a report is only
ever written inside the reports directory (``Settings.reports_dir``): a client's path is
taken relative to it (or, if absolute, must lie in it), ``..`` segments, paths elsewhere
and symlinks that lead out of it are refused (``OUTPUT_PATH_OUTSIDE_REPORTS``) before
anything is computed or written, and the page is renamed into place whole
(``write_report``), so two writers of one report never leave a torn file.

The page needs no script, stylesheet or font from anywhere (observatory networks are
offline); every value on it is escaped, file names and messages included.
"""

from __future__ import annotations

import contextlib
import errno
import html
import math
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Final

from dsa110.errors import InputError
from dsa110.ops.files.paths import CONTROL_CHARACTERS, MAX_PATH_CHARS, private_name, under

REPORT_SUFFIX: Final = "_validation_report.html"
REPORT_SUFFIXES: Final = (".html", ".htm")
MAX_DIRECTORIES: Final = 4
"""Directories an ``output_path`` may nest below the reports directory (each made if missing)."""
MAX_NAME_BYTES: Final = 255 - 16
"""A name's bytes, leaving room for the temporary name's ``.`` and ``.<8 hex>`` (255: the
file systems' limit)."""
MAX_TABLE_ROWS: Final = 100
"""Matched positions and fluxes listed per check (the figures summarise them all)."""
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._:+-]")

TITLES: Final = {"astrometry": "Astrometry", "flux_scale": "Flux scale", "source_counts": "Source counts"}
METRICS: Final = (
    ("n_catalog", "catalog sources"),
    ("n_detected", "detected"),
    ("n_matched", "matched"),
    ("mean_offset_arcsec", "mean offset (arcsec)"),
    ("rms_offset_arcsec", "rms offset (arcsec)"),
    ("max_offset_arcsec", "max offset (arcsec)"),
    ("offset_ra_arcsec", "mean RA offset (arcsec)"),
    ("offset_dec_arcsec", "mean Dec offset (arcsec)"),
    ("mean_flux_ratio", "mean flux ratio"),
    ("median_flux_ratio", "median flux ratio"),
    ("rms_flux_ratio", "flux ratio scatter (1.4826 MAD)"),
    ("flux_scale_error", "flux scale error"),
    ("completeness", "completeness"),
    ("completeness_limit_jy", "completeness limit (Jy)"),
)
"""The figures of a check, in page order (those that are null or absent are left out)."""

STYLE: Final = (
    "body{font:14px/1.4 sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1em}"
    "th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}"
    "td.n{text-align:right;font-family:monospace}"
    ".pass{color:#1a7f37}.warn{color:#9a6700}.fail{color:#cf222e}"
)


class OutputPathOutsideReports(InputError):
    """``output_path`` names a place outside the reports directory: nothing is written."""

    code = "OUTPUT_PATH_OUTSIDE_REPORTS"


class BadOutputPath(InputError):
    """``output_path`` is not a report file name (not ``.html``, hidden, control characters...)."""

    code = "BAD_OUTPUT_PATH"


def figure(value: Any) -> str:
    """A number as the page shows it: integers whole, other numbers to 4 significant digits."""
    if isinstance(value, bool) or value is None:
        return html.escape(str(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else html.escape(str(value))
    return html.escape(str(value))


def default_name(image_path: str) -> str:
    """``<image_stem>_validation_report.html`` (the legacy name), with unusual characters as ``_``."""
    stem = _UNSAFE_NAME.sub("_", PurePosixPath(image_path).stem).lstrip(".") or "image"
    return f"{stem[:200]}{REPORT_SUFFIX}"


def _refuse(field: str, why: str) -> OutputPathOutsideReports:
    return OutputPathOutsideReports(
        f"`{field}` must name a file inside the reports directory: {why}", field=field
    )


def report_target(
    reports_dir: Path, image_path: str, output_path: str | None, field: str = "output_path"
) -> Path:
    """Where the report is written (blocking: call in a thread); raises before any file is touched.

    No ``output_path``: the legacy name in the reports directory. Otherwise a relative path
    is taken under the reports directory and an absolute one must lie in it (as written or
    as its real location). Either way every existing directory on the way must be a real
    directory inside it, no name may be too long for the file system with the temporary
    name's 16 bytes (:func:`write_report`), and the file must not be a symlink or a directory.
    """
    root = Path(os.path.realpath(reports_dir))
    candidate = (
        root / default_name(image_path)
        if output_path is None
        else _given(root, reports_dir, output_path, field)
    )
    if any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in candidate.relative_to(root).parts):
        raise BadOutputPath(f"`{field}` holds a name too long for the file system", field=field)
    try:
        _check_real(candidate, root, field)
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            raise BadOutputPath(f"`{field}` holds a name too long for the file system", field=field) from None
        raise _refuse(field, "its directory cannot be reached") from None
    return candidate


def _given(root: Path, reports_dir: Path, output_path: str, field: str) -> Path:
    """A client's ``output_path`` as a path inside ``root`` (the rules of :func:`report_target`)."""
    if not isinstance(output_path, str) or not output_path or len(output_path) > MAX_PATH_CHARS:
        raise BadOutputPath(f"`{field}` must be a path of 1 to {MAX_PATH_CHARS} characters", field=field)
    if CONTROL_CHARACTERS.search(output_path) or not output_path.isprintable():
        raise BadOutputPath(f"`{field}` must not contain control or invisible characters", field=field)
    if "\\" in output_path:
        raise BadOutputPath(f"`{field}` separates directories with `/`", field=field)
    given = PurePosixPath(output_path)
    if ".." in given.parts:
        raise _refuse(field, "`..` segments are not allowed")
    literal_root = Path(os.path.normpath(os.path.abspath(reports_dir)))
    candidate = Path(os.path.normpath(output_path if given.is_absolute() else root / output_path))
    if under(candidate, [literal_root]) and not under(candidate, [root]):
        candidate = root / candidate.relative_to(literal_root)  # the reports directory as configured
    if candidate == root:
        raise BadOutputPath(f"`{field}` must name a file, not the reports directory", field=field)
    if not under(candidate, [root]):
        raise _refuse(field, "this path is elsewhere")
    inside = candidate.relative_to(root).parts
    if len(inside) > MAX_DIRECTORIES + 1:
        raise BadOutputPath(f"`{field}` may nest at most {MAX_DIRECTORIES} directories", field=field)
    if any(private_name(part) for part in inside):
        raise BadOutputPath(f"`{field}` must not name hidden or database files", field=field)
    if candidate.suffix.lower() not in REPORT_SUFFIXES:
        raise BadOutputPath(f"`{field}` must end in .html", field=field)
    if any(PurePosixPath(part).suffix.lower() in REPORT_SUFFIXES for part in inside[:-1]):
        # A directory named like a report would stand where that report is written.
        raise BadOutputPath(f"`{field}` may not name a directory like a report (.html)", field=field)
    return candidate


def _check_real(candidate: Path, root: Path, field: str) -> None:
    """Every existing directory on the way is a real directory in ``root``; the file is not a
    symlink, nor anything but a regular file."""
    for step in reversed(candidate.relative_to(root).parents[:-1]):  # root's child first
        place = root / step
        if place.is_symlink():
            raise _refuse(field, "a symlink on the way leads out of it")
        if not place.exists():
            break
        if not place.is_dir():
            raise BadOutputPath(f"`{field}`: {step} is a file, not a directory", field=field)
    if candidate.is_symlink():
        raise _refuse(field, "it is a symlink")
    if candidate.exists() and not candidate.is_file():
        raise BadOutputPath(f"`{field}` names a directory or a special file", field=field)


def write_report(target: Path, reports_dir: Path, page: str, field: str = "output_path") -> Path:
    """Write ``page`` to ``target`` (from :func:`report_target`) whole (blocking: call in a thread).

    The checks of :func:`report_target` ran before the catalog checks, seconds ago; what is
    on disk may have changed since. So the path is walked from the reports directory one
    directory at a time through file descriptors that never follow a symlink
    (``O_NOFOLLOW``), making the missing ones, and the page is written in the last one under
    a temporary name (``O_EXCL``) and renamed into place: a directory swapped for a symlink
    in between is refused, never followed, and no one sees a part-written report.
    """
    root = Path(os.path.realpath(reports_dir))
    root.mkdir(parents=True, exist_ok=True)
    *directories, name = target.relative_to(root).parts
    try:
        where = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for directory in directories:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(directory, dir_fd=where)
                inner = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=where)
                os.close(where)
                where = inner
            _write_whole(where, name, page.encode("utf-8"))
        finally:
            os.close(where)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _refuse(field, "a symlink or a file on the way") from None
        if error.errno in (errno.EISDIR, errno.ENAMETOOLONG, errno.EEXIST):
            raise BadOutputPath(
                f"`{field}` cannot be written: {os.strerror(error.errno)}", field=field
            ) from None
        raise
    return target


def _write_whole(directory: int, name: str, content: bytes) -> None:
    """``content`` as ``name`` in the directory open as ``directory``: written under a temporary
    name, then renamed (a rename replaces a symlink itself, never its target)."""
    partial = f".{name}.{uuid.uuid4().hex[:8]}"
    out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=directory)
    try:
        with os.fdopen(out, "wb") as stream:
            stream.write(content)
        os.replace(partial, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial, dir_fd=directory)
        raise


def _verdict(result: Mapping[str, Any]) -> tuple[str, str]:
    if result.get("issues"):
        return "fail", "FAIL"
    if result.get("warnings"):
        return "warn", "WARN"
    return "pass", "PASS"


def _messages(kind: str, items: Sequence[str]) -> str:
    if not items:
        return ""
    listed = "".join(f"<li>{html.escape(str(m))}</li>" for m in items)
    return f'<p>{kind}:</p><ul class="{kind.lower()}">{listed}</ul>'


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], total: int, css: str) -> str:
    if not rows:
        return ""
    heads = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f'<td class="n">{figure(v)}</td>' for v in row) + "</tr>" for row in rows)
    more = f"<p>{len(rows)} of {total} shown.</p>" if total > len(rows) else ""
    return f'<table class="{css}"><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>{more}'


def _section(result: Mapping[str, Any]) -> str:
    kind = str(result.get("validation_type", ""))
    css, word = _verdict(result)
    figures = "".join(
        f'<tr><th>{html.escape(label)}</th><td class="n">{figure(result[key])}</td></tr>'
        for key, label in METRICS
        if result.get(key) is not None
    )
    bins = result.get("completeness_bins_jy") or []
    per_bin = result.get("completeness_per_bin") or []
    cat = result.get("catalog_counts_per_bin") or []
    det = result.get("detected_counts_per_bin") or []
    bin_rows = [list(row) for row in zip(bins, cat, det, per_bin, strict=False)]
    pairs = result.get("matched_pairs") or []
    pair_rows = [[m[0], m[1], c[0], c[1], sep] for m, c, sep in pairs[:MAX_TABLE_ROWS]]
    fluxes = result.get("matched_fluxes") or []
    flux_rows = [list(f) for f in fluxes[:MAX_TABLE_ROWS]]
    return (
        f'<section id="{html.escape(kind)}"><h2>{html.escape(TITLES.get(kind, kind))} '
        f'<span class="{css}">{word}</span></h2>'
        f'<table class="figures">{figures}</table>'
        + _messages("Issues", result.get("issues") or [])
        + _messages("Warnings", result.get("warnings") or [])
        + _table(("flux bin (Jy)", "catalog", "detected", "completeness"), bin_rows, len(bin_rows), "bins")
        + _table(
            ("fitted RA", "fitted Dec", "catalog RA", "catalog Dec", "separation (arcsec)"),
            pair_rows,
            len(pairs),
            "positions",
        )
        + _table(("measured (Jy)", "catalog (Jy)", "ratio"), flux_rows, len(fluxes), "fluxes")
        + "</section>"
    )


def _summary_row(result: Mapping[str, Any]) -> str:
    kind = str(result.get("validation_type"))
    css, word = _verdict(result)
    counts = f"{len(result.get('issues') or [])} issues, {len(result.get('warnings') or [])} warnings"
    return (
        f"<tr><th>{html.escape(TITLES.get(kind, kind))}</th>"
        f'<td class="{css}">{word}</td><td class="n">{counts}</td></tr>'
    )


def validation_report_html(
    image_path: str,
    catalog: str,
    results: Sequence[Mapping[str, Any]],
    *,
    search_radius_arcsec: float,
    min_snr: float,
    generated_at: datetime,
) -> str:
    """The page: one section per check (figures, issues, warnings, completeness bins, matches).

    ``results`` are checks in the legacy ``CatalogValidationResult`` fields (a metric that
    does not apply may be absent or null).
    """
    name = PurePosixPath(image_path).name
    verdicts = "".join(_summary_row(r) for r in results)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>Validation report: {html.escape(name)}</title>'
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Catalog validation: {html.escape(name)}</h1>"
        '<table class="about">'
        f"<tr><th>image</th><td>{html.escape(image_path)}</td></tr>"
        f"<tr><th>catalog</th><td>{html.escape(catalog)}</td></tr>"
        f'<tr><th>match radius (arcsec)</th><td class="n">{figure(search_radius_arcsec)}</td></tr>'
        f'<tr><th>detection threshold (sigma)</th><td class="n">{figure(min_snr)}</td></tr>'
        f"<tr><th>generated</th><td>{html.escape(generated_at.isoformat())}</td></tr></table>"
        f'<table class="summary">{verdicts}</table>'
        + "".join(_section(r) for r in results)
        + "</body></html>\n"
    )
