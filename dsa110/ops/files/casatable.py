"""Any CASA table for the QA browser: its columns, keywords, subtables and first rows.

Read with python-casacore. Each column is described by its value type, dimensionality,
the shape of its first cell and its unit (``QuantumUnits`` keyword); rows are given as
JSON, large array cells summarised (:mod:`dsa110.ops.files.jsonable`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsa110.ops.files.caltables import type_from_name
from dsa110.ops.files.jsonable import jsonable

MAX_ROWS = 100


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    value_type: str
    ndim: int
    shape: list[int]
    unit: str | None
    comment: str


@dataclass(frozen=True)
class CasaTableInfo:
    path: Path
    n_rows: int
    table_type: str | None
    info_type: str
    info_subtype: str
    columns: list[ColumnInfo]
    keywords: dict[str, Any]
    subtables: list[str]
    rows: list[dict[str, Any]]
    offset: int


def _column(table: Any, name: str) -> ColumnInfo:
    desc = table.getcoldesc(name)
    ndim = int(desc.get("ndim", 0))
    shape: list[int] = [int(v) for v in desc.get("shape", [])]
    if ndim and not shape and table.nrows() and table.iscelldefined(name, 0):
        text = table.getcolshapestring(name, 0, 1)[0]  # e.g. "[8, 2]", without reading the cell
        shape = [int(v) for v in text.strip("[]").split(",") if v.strip()]
    units = desc.get("keywords", {}).get("QuantumUnits")
    return ColumnInfo(
        name=name,
        value_type=str(desc.get("valueType", "")),
        ndim=ndim,
        shape=shape,
        unit=" ".join(str(u) for u in units) if units is not None else None,
        comment=str(desc.get("comment", "")),
    )


def _keywords(keywords: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in keywords.items():
        if isinstance(value, str) and value.startswith("Table: "):
            out[key] = {"subtable": Path(value[len("Table: ") :]).name}
        else:
            out[key] = jsonable(value)
    return out


def read_casa_table(path: Path, *, offset: int = 0, rows: int = 10) -> CasaTableInfo:
    """Describe the table at ``path`` and return rows ``[offset, offset + rows)`` (blocking I/O)."""
    from casacore import tables as ct

    rows = max(0, min(rows, MAX_ROWS))
    with ct.table(str(path), ack=False, readonly=True) as table:
        n_rows = int(table.nrows())
        names = list(table.colnames())
        columns = [_column(table, n) for n in names]
        info = table.info()
        picked = []
        for row in range(offset, min(offset + rows, n_rows)):
            values: dict[str, Any] = {}
            for name in names:
                values[name] = jsonable(table.getcell(name, row)) if table.iscelldefined(name, row) else None
            picked.append(values)
        return CasaTableInfo(
            path=path,
            n_rows=n_rows,
            table_type=type_from_name(path.name) or ("MS" if path.name.endswith(".ms") else None),
            info_type=str(info.get("type", "")),
            info_subtype=str(info.get("subType", "")),
            columns=columns,
            keywords=_keywords(table.getkeywords()),
            subtables=sorted(Path(s).name for s in table.getsubtables()),
            rows=picked,
            offset=offset,
        )
