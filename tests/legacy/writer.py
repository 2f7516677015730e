"""The legacy pipeline at work: appends observation groups to a fixture's files as it would.

Each group goes through the queue the way the streaming converter moves it (one
transaction per step: ``collecting`` with its 16 subband files, ``pending``,
``in_progress``, ``completed``), then its MS is indexed, its image registered and its
sources measured (``photometry``). After each commit the writer prints
``<what> <key> <unix time of the commit>`` so a reader can measure how long the new rows
took to reach it. Run as ``python -m tests.legacy.writer STATE_DIR --groups N``.
"""

from __future__ import annotations

import argparse
import calendar
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dsa110.times import mjd_to_datetime
from tests.legacy.fixture import N_SUBBANDS, PHOTOMETRY_COLUMNS, image_paths, ms_path

UNIX_MJD = 40587.0


@dataclass
class Sky:
    names: list[str]
    ra: list[float]
    dec: list[float]
    nvss_mjy: list[float]


def read_sky(products: Path) -> Sky:
    with sqlite3.connect(products) as conn:
        rows = conn.execute(
            "SELECT source_id, ra_deg, dec_deg, nvss_flux_mjy FROM variability_stats"
        ).fetchall()
    return Sky([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] or 10.0 for r in rows])


class PipelineWriter:
    """Writes to ``ingest.sqlite3`` and ``products.sqlite3`` of ``state_dir``, one step per commit."""

    def __init__(self, state_dir: Path, groups_per_day: int = 24, out: object = None) -> None:
        self.queue = sqlite3.connect(state_dir / "ingest.sqlite3", timeout=30, isolation_level=None)
        self.products = sqlite3.connect(state_dir / "products.sqlite3", timeout=30, isolation_level=None)
        for conn in (self.queue, self.products):
            conn.execute("PRAGMA journal_mode=WAL")
        self.sky = read_sky(state_dir / "products.sqlite3")
        self.groups_per_day = groups_per_day
        self.out = out if out is not None else sys.stdout
        last = self.queue.execute("SELECT max(group_id) FROM ingest_queue").fetchone()[0]
        start = calendar.timegm(time.strptime(last, "%Y-%m-%dT%H:%M:%S")) if last else time.time()
        self.next_start = start + 86400.0 / groups_per_day
        self.next_photometry_id = (
            self.products.execute("SELECT max(id) FROM photometry").fetchone()[0] or 0
        ) + 1

    def _say(self, what: str, key: str) -> None:
        print(f"{what} {key} {time.time():.6f}", file=self.out, flush=True)  # type: ignore[call-overload]

    def _step(self, conn: sqlite3.Connection, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                conn.execute(sql, params)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def add_group(self, measure: bool = True) -> str:
        start = self.next_start
        self.next_start += 86400.0 / self.groups_per_day
        mjd = start / 86400.0 + UNIX_MJD
        gid = mjd_to_datetime(mjd).strftime("%Y-%m-%dT%H:%M:%S")
        now = time.time()
        self._step(
            self.queue,
            [
                (
                    "INSERT INTO ingest_queue (group_id, state, received_at, last_update, expected_subbands, "
                    "retry_count, chunk_minutes) VALUES (?, 'collecting', ?, ?, 16, 0, 5.0)",
                    (gid, now, now),
                ),
                *(
                    (
                        "INSERT INTO subband_files (group_id, subband_idx, path) VALUES (?, ?, ?)",
                        (gid, sb, f"/data/incoming/{gid}_sb{sb:02d}.hdf5"),
                    )
                    for sb in range(N_SUBBANDS)
                ),
            ],
        )
        self._say("group", gid)
        for state in ("pending", "in_progress", "completed"):
            self.set_state(gid, state)
        if measure:
            self.measure(gid, mjd + 2.5 / 1440.0)
        return gid

    def set_state(self, gid: str, state: str) -> None:
        self._step(
            self.queue,
            [
                (
                    "UPDATE ingest_queue SET state = ?, last_update = ? WHERE group_id = ?",
                    (state, time.time(), gid),
                )
            ],
        )
        self._say(f"state:{state}", gid)

    def measure(self, gid: str, mid_mjd: float) -> None:
        now = time.time()
        plain, pbcor = image_paths(gid)
        self._step(
            self.products,
            [
                (
                    "INSERT INTO ms_index (path, start_mjd, end_mjd, mid_mjd, processed_at, status, stage, "
                    "stage_updated_at, cal_applied, imagename) VALUES (?, ?, ?, ?, ?, 'done', 'imaged', ?, 1, ?)",
                    (ms_path(gid), mid_mjd - 2.5 / 1440, mid_mjd + 2.5 / 1440, mid_mjd, now, now, plain),
                ),
                *(
                    (
                        "INSERT INTO images (path, ms_path, created_at, type, pbcor) VALUES (?, ?, ?, '5min', ?)",
                        (path, ms_path(gid), now, flag),
                    )
                    for path, flag in ((plain, 0), (pbcor, 1))
                ),
            ],
        )
        self._say("image", pbcor)
        slot = int((mid_mjd % 1.0) * self.groups_per_day)
        rows = []
        for i, name in enumerate(self.sky.names):
            if int(self.sky.ra[i] / 360.0 * self.groups_per_day) != slot:
                continue
            flux = self.sky.nvss_mjy[i] / 1000.0
            err = 0.0005 + 0.02 * flux
            rows.append(
                (
                    self.next_photometry_id,
                    pbcor,
                    self.sky.ra[i],
                    self.sky.dec[i],
                    self.sky.nvss_mjy[i],
                    flux,
                    err,
                    now,
                    name,
                    flux / err,
                    mid_mjd,
                    0.3,
                    0,
                )
            )
            self.next_photometry_id += 1
        if rows:
            marks = ", ".join("?" * 13)
            self._step(
                self.products,
                [(f"INSERT INTO photometry ({PHOTOMETRY_COLUMNS}) VALUES ({marks})", r) for r in rows],
            )
        self._say("photometry", pbcor)

    def close(self) -> None:
        self.queue.close()
        self.products.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between groups")
    parser.add_argument("--groups-per-day", type=int, default=24)
    args = parser.parse_args(argv)
    writer = PipelineWriter(args.state_dir, args.groups_per_day)
    try:
        for _ in range(args.groups):
            writer.add_group()
            time.sleep(args.interval)
    finally:
        writer.close()
    print("done", "-", f"{time.time():.6f}", flush=True)


if __name__ == "__main__":
    main()
