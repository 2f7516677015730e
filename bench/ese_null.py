"""Null calibration of the ESE score: the table in ``dsa110.science.ese_far``.

Simulates ``--sources`` steady source-years under the injection bench's noise model
(``bench/ese_sim.py``: cadence with gaps, per-image gains, 1 % systematic, thermal noise,
red noise on a random third), normalises them as ingest does, runs
``dsa110.science.ese_edge.detect_all`` with ``min_score`` lowered to ``--floor`` and keeps
each source's highest score per kind (0 when none). Prints the survival function at the
table's scores and the ``NULL_TABLES`` literal to paste into ``dsa110/science/ese_far.py``.

    python bench/ese_null.py --sources 3000 --seed 101

Seeds 101+ are calibration seeds, disjoint from the injection bench's tuning (1-3) and
held-out (4-6) seeds.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ese_sim import normalised, simulate
from dsa110.science.ese import DEFAULT_PARAMS
from dsa110.science.ese_edge import detect_all
from dsa110.science.ese_far import survival_table

SCORES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4, 1.7, 2.0)
KINDS = ("dip", "ongoing", "egress")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--floor", type=float, default=0.5)
    args = parser.parse_args()
    params = replace(DEFAULT_PARAMS, min_score=args.floor, max_false_alarm=1.0)
    start = time.process_time()
    best: dict[str, list[float]] = {k: [] for k in KINDS}
    done = 0
    seed = args.seed
    while done < args.sources:
        n = min(500, args.sources - done)
        sim = simulate(seed, n, steady_only=True)
        flux, err = normalised(sim)
        for i in range(n):
            ok = np.isfinite(flux[i]) & np.isfinite(err[i]) & (err[i] > 0)
            found = detect_all(sim.image_mjd[ok], flux[i, ok], err[i, ok], params)
            for kind in KINDS:
                best[kind].append(max((d.score for d in found if d.kind == kind), default=0.0))
        done += n
        seed += 1000
    tables = {k: survival_table(best[k], done, SCORES) for k in KINDS}
    for k in KINDS:
        for s, p in tables[k]:
            print(f"ese_null kind={k} score>={s:.2f} fap_per_source_year={p:.5f}")
    print(f"ese_null source_years={done} cpu_s={time.process_time() - start:.0f}")
    print("NULL_TABLES = {")
    for k in KINDS:
        print(f'    "{k}": (' + ", ".join(f"({s}, {p:.3g})" for s, p in tables[k]) + "),")
    print("}")


if __name__ == "__main__":
    main()
