"""Streaming tables: VOTable, CSV and ECSV written chunk by chunk; FITS spooled to disk.

Every chunk is written by astropy (``Table.write``) with the spec's units, UCDs and
descriptions; the stream is the header of an empty table, then each chunk's rows, then
the footer, so a million-row export never holds more than one chunk in memory:

* CSV and ECSV: the rows of a chunk are what writing it produces after the (identical)
  header of the empty table.
* VOTable: the header is the empty table's document cut before ``</TABLE>``, with each
  character column declared ``arraysize="*"`` (so every chunk's strings fit) and the
  table's metadata as ``INFO`` elements of the ``RESOURCE``; each chunk contributes the
  ``<TR>`` rows of its own ``TABLEDATA``; the footer may carry ``INFO`` elements learnt
  while streaming (the cone search's ``QUERY_STATUS`` ``OVERFLOW``, which DALI places
  after the table).
* FITS: a binary table's header states its row count (``NAXIS2``) before the rows, and
  the count is known only at the end, so the file is written to a temporary file on disk
  (fixed-width records appended per chunk, ``NAXIS2`` patched in place, the data padded
  to 2880-byte blocks) and then streamed from there.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final
from xml.sax.saxutils import quoteattr

from astropy.io import fits

from dsa110.exports.columns import Row, TableSpec


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    extension: str


FORMATS: Final[Mapping[str, Format]] = {
    "votable": Format("votable", "application/x-votable+xml", "xml"),
    "csv": Format("csv", "text/csv; charset=utf-8", "csv"),
    "ecsv": Format("ecsv", "text/x-ecsv; charset=utf-8", "ecsv"),
    "fits": Format("fits", "application/fits", "fits"),
}
FILE_CHUNK: Final = 1 << 16
FITS_BLOCK: Final = 2880
_FIELD_TAG = re.compile(r"<FIELD\b[^>]*>")
_ARRAYSIZE = re.compile(r'\barraysize="\d+"')

Info = tuple[str, str]
"""A VOTable ``INFO`` element: (name, value)."""


def meta_infos(meta: Mapping[str, Any]) -> list[Info]:
    """Scalar metadata as INFO pairs; structured values as compact JSON."""
    out: list[Info] = []
    for key, value in meta.items():
        if key == "description" or value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
        out.append((key, text))
    return out


def info_xml(infos: Sequence[Info], indent: str = "  ") -> str:
    return "".join(f"{indent}<INFO name={quoteattr(n)} value={quoteattr(v)}/>\n" for n, v in infos)


def _variable_length_chars(match: re.Match[str]) -> str:
    tag = match.group(0)
    if 'datatype="char"' in tag or 'datatype="unicodeChar"' in tag:
        return _ARRAYSIZE.sub('arraysize="*"', tag)
    return tag


class TextEncoder:
    """Header, rows and footer of one table in a text format (votable, csv, ecsv)."""

    def __init__(
        self, spec: TableSpec, fmt: str, meta: Mapping[str, Any], infos: Sequence[Info] = ()
    ) -> None:
        if fmt not in ("votable", "csv", "ecsv"):
            raise ValueError(f"not a text table format: {fmt}")
        self.spec = spec
        self.fmt = fmt
        self.meta = dict(meta)
        self.infos = [*infos, *meta_infos(self.meta)]
        self._empty_text = self._write([])

    def _write(self, rows: Sequence[Row]) -> str:
        # VOTable keeps only `description` of the table meta (the rest goes in INFOs).
        meta = {"description": self.meta.get("description", self.spec.description)}
        table = self.spec.table(rows, meta if self.fmt == "votable" else self.meta, masked=self.fmt == "csv")
        if self.fmt == "votable":
            buffer = io.BytesIO()
            table.write(buffer, format="votable")
            return buffer.getvalue().decode("utf-8")
        text = io.StringIO()
        table.write(text, format=f"ascii.{self.fmt}")
        return text.getvalue()

    def head(self) -> bytes:
        text = self._empty_text
        if self.fmt != "votable":
            return text.encode()
        text = _FIELD_TAG.sub(_variable_length_chars, text)
        resource = '<RESOURCE type="results">\n'
        at = text.index(resource) + len(resource)
        text = text[:at] + info_xml(self.infos) + text[at:]
        cut = text.rindex("  </TABLE>")
        return (text[:cut] + "   <DATA>\n    <TABLEDATA>\n").encode()

    def rows(self, rows: Sequence[Row]) -> bytes:
        if not rows:
            return b""
        text = self._write(rows)
        if self.fmt != "votable":
            if not text.startswith(self._empty_text):  # a format change in astropy: fail loudly
                raise RuntimeError(f"{self.fmt} chunk header differs from the stream's header")
            return text[len(self._empty_text) :].encode()
        start = text.index("<TABLEDATA>") + len("<TABLEDATA>\n")
        return text[start : text.rindex("    </TABLEDATA>")].encode()

    def tail(self, trailer: Sequence[Info] = ()) -> bytes:
        if self.fmt != "votable":
            return b""
        return (
            "    </TABLEDATA>\n   </DATA>\n  </TABLE>\n" + info_xml(trailer) + " </RESOURCE>\n</VOTABLE>\n"
        ).encode()


async def encode(
    spec: TableSpec,
    fmt: str,
    chunks: AsyncIterator[Sequence[Row]],
    *,
    meta: Mapping[str, Any] | None = None,
    infos: Sequence[Info] = (),
    trailer: Callable[[], Sequence[Info]] = lambda: (),
) -> AsyncIterator[bytes]:
    """``chunks`` of rows as the bytes of one table in ``fmt``, a piece at a time.

    ``infos`` go before a VOTable's table, ``trailer()`` (asked once the chunks are
    exhausted) after it; other formats ignore both.
    """
    meta = {"description": spec.description, **(meta or {})}
    if fmt == "fits":
        async for piece in _fits(spec, chunks, meta):
            yield piece
        return
    encoder = await asyncio.to_thread(TextEncoder, spec, fmt, meta, infos)
    yield encoder.head()
    async for rows in chunks:
        if rows:
            yield await asyncio.to_thread(encoder.rows, rows)
    yield encoder.tail(trailer())


# --- FITS -----------------------------------------------------------------------------------


def _extension_header(spec: TableSpec, meta: Mapping[str, Any], n_rows: int) -> bytes:
    hdu = fits.table_to_hdu(spec.table([], fixed=True))
    header = hdu.header
    header["NAXIS2"] = n_rows
    header["EXTNAME"] = spec.name.upper()[:68]
    header["ORIGIN"] = "DSA-110 continuum pipeline"
    for i, column in enumerate(spec.columns, start=1):
        header[f"TCOMM{i}"] = column.description[:68]
    for key, value in meta.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
        header.add_comment(f"{key} = {text}".encode("ascii", "replace").decode()[:1000])
    cards: str = header.tostring()
    return cards.encode("ascii")


def _fits_records(spec: TableSpec, rows: Sequence[Row]) -> bytes:
    hdu = fits.table_to_hdu(spec.table(rows, fixed=True))
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buffer)
    header_length = len(fits.PrimaryHDU().header.tostring()) + len(hdu.header.tostring())
    size = int(hdu.header["NAXIS1"]) * int(hdu.header["NAXIS2"])
    return buffer.getvalue()[header_length : header_length + size]


async def _fits(
    spec: TableSpec, chunks: AsyncIterator[Sequence[Row]], meta: Mapping[str, Any]
) -> AsyncIterator[bytes]:
    spool = tempfile.TemporaryFile()  # noqa: SIM115  (closed in the finally below)
    try:
        primary = fits.PrimaryHDU().header.tostring().encode("ascii")
        header = await asyncio.to_thread(_extension_header, spec, meta, 0)
        await asyncio.to_thread(_write, spool, primary + header)
        n_rows, n_bytes = 0, 0
        async for rows in chunks:
            if rows:
                records = await asyncio.to_thread(_fits_records, spec, rows)
                await asyncio.to_thread(_write, spool, records)
                n_rows += len(rows)
                n_bytes += len(records)
        final = await asyncio.to_thread(_extension_header, spec, meta, n_rows)
        if len(final) != len(header):
            raise RuntimeError("the FITS header changed size when its row count was set")
        await asyncio.to_thread(_finish_fits, spool, len(primary), final, n_bytes)
        while piece := await asyncio.to_thread(_read, spool):
            yield piece
    finally:
        spool.close()


def _read(spool: IO[bytes]) -> bytes:
    return spool.read(FILE_CHUNK)


def _write(spool: IO[bytes], data: bytes) -> None:
    spool.write(data)


def _finish_fits(spool: IO[bytes], header_at: int, header: bytes, data_bytes: int) -> None:
    spool.write(b"\0" * (-data_bytes % FITS_BLOCK))  # binary-table data is padded with zeros
    spool.seek(header_at)
    spool.write(header)
    spool.seek(0)


def filename(stem: str, fmt: str) -> str:
    """A safe download name: letters, digits, ``-`` and ``_`` only."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:100] or "table"
    return f"{safe}.{FORMATS[fmt].extension}"
