"""The demo's job history: the jobs the pipeline would have run for the demo's groups,
calibrations and mosaics, with their parameters, states, logs and products.

Every group in the last ``ops.JOB_WINDOW_GROUPS`` (and every failed one) gets its convert,
apply and image jobs; every calibration group its calibrate job; recent mosaics their
mosaic job; each day an ESE detection run; and two operator cancellations, so every job
state is represented. ``JobHistory(...).drafts()`` returns them unsorted and unwritten:
the writer (``dsa110.demo.writer``) inserts them with their logs and product links.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from dsa110.db.enums import GroupState, JobState, JobType, MosaicStatus
from dsa110.demo import operations as ops
from dsa110.demo.instrument import N_SUBBANDS, TILE_CELL_ARCSEC, TILE_NPIX
from dsa110.demo.observe import Schedule


@dataclass(frozen=True)
class JobHistory:
    """What the job drafts are made from: the schedule and the rows already written."""

    schedule: Schedule
    root: Path
    rng: np.random.Generator
    now: datetime
    group_pk: list[int]
    mosaics: list[tuple[int, ops.MosaicPlan]]
    image_groups: list[int]
    cal_groups: list[int]
    failed_with_ms: set[int]
    failed_cal: int | None

    def drafts(self) -> list[ops.JobDraft]:
        """Every job draft, in no particular order."""
        s, root, rng = self.schedule, self.root, self.rng
        group_pk, mosaics = self.group_pk, self.mosaics
        drafts: list[ops.JobDraft] = []
        recent = set(range(max(0, len(s) - ops.JOB_WINDOW_GROUPS), len(s)))
        failed = {i for i, st in enumerate(s.states) if st == GroupState.FAILED}
        cal_tables = {
            g: [str(root / "ms" / f"{s.group_ids[g]}_{suffix}") for _, _, suffix in ops.CAL_TABLE_TYPES]
            for g in self.cal_groups
        }
        for i in sorted(recent | failed):
            state, gid = s.states[i], s.group_ids[i]
            if state == GroupState.COLLECTING:
                continue
            ms, img = ops.ms_path(root, gid), ops.image_path(root, gid)
            base = s.received_at[i]
            convert_params = {
                "group_id": gid,
                "input_dir": str(root / "incoming"),
                "output_dir": str(root / "ms"),
                "writer": "parallel-subband",
                "expected_subbands": N_SUBBANDS,
            }
            convert_state = {
                GroupState.PENDING: JobState.PENDING,
                GroupState.IN_PROGRESS: JobState.RUNNING,
            }.get(GroupState(state), JobState.DONE)
            if state == GroupState.FAILED and i not in self.failed_with_ms:
                convert_state = JobState.FAILED
            drafts.append(
                ops.job(
                    rng,
                    JobType.CONVERT,
                    convert_state,
                    base + timedelta(seconds=5),
                    convert_params,
                    group_pk=group_pk[i],
                    ms=ms,
                    seconds=40,
                    error=s.errors[i],
                    outputs=[ms],
                )
            )
            if state == GroupState.COMPLETED or i in self.failed_with_ms:
                applied = [c for g, c in cal_tables.items() if g <= i]
                drafts.append(
                    ops.job(
                        rng,
                        JobType.APPLY,
                        JobState.DONE,
                        base + timedelta(seconds=50),
                        {"ms_path": ms, "gaintables": applied[-1] if applied else []},
                        group_pk=group_pk[i],
                        ms=ms,
                        seconds=25,
                        inputs=[ms],
                    )
                )
                image_state = JobState.DONE if state == GroupState.COMPLETED else JobState.FAILED
                drafts.append(
                    ops.job(
                        rng,
                        JobType.IMAGE,
                        image_state,
                        base + timedelta(seconds=80),
                        {
                            "ms_path": ms,
                            "imsize": TILE_NPIX,
                            "cell_arcsec": TILE_CELL_ARCSEC,
                            "backend": "wsclean",
                            "niter": 1000,
                            "pbcor": True,
                        },
                        group_pk=group_pk[i],
                        ms=ms,
                        seconds=100,
                        error=s.errors[i],
                        inputs=[ms],
                        outputs=[img],
                    )
                )
        for g in self.cal_groups:
            ms = ops.ms_path(root, s.group_ids[g])
            state = JobState.FAILED if g == self.failed_cal else JobState.DONE
            drafts.append(
                ops.job(
                    rng,
                    JobType.CALIBRATE,
                    state,
                    s.updated_at[g] - timedelta(seconds=90),
                    {
                        "ms_path": ms,
                        "field": s.calibrators[g][0]["name"],
                        "refant": ops.REFANT,
                        "solve_delay": True,
                        "solve_bandpass": True,
                        "solve_gains": True,
                    },
                    group_pk=group_pk[g],
                    ms=ms,
                    seconds=70,
                    error="bandpass solve: insufficient unflagged data",
                    inputs=[ms],
                )
            )
        recent_mosaics = [
            (pk, mp) for pk, mp in mosaics if mp.end_mjd >= float(s.mid_mjd[-1]) - ops.JOB_WINDOW_DAYS
        ]
        for _pk, mp in recent_mosaics:
            members = [ops.image_path(root, s.group_ids[self.image_groups[k]]) for k in mp.members]
            state = JobState.RUNNING if mp.status == MosaicStatus.BUILDING else JobState.DONE
            drafts.append(
                ops.job(
                    rng,
                    JobType.MOSAIC,
                    state,
                    mp.created_at - timedelta(minutes=3),
                    {
                        "name": mp.name,
                        "start_mjd": mp.start_mjd,
                        "end_mjd": mp.end_mjd,
                        "method": "pbweighted",
                    },
                    seconds=150,
                    inputs=members,
                    outputs=[mp.data_id],
                )
            )
        day0 = s.start[0].replace(hour=0, minute=10, second=0)
        day = day0 + timedelta(days=1)
        while day < self.now:
            drafts.append(
                ops.job(
                    rng,
                    JobType.ESE_DETECT,
                    JobState.DONE,
                    day,
                    {"min_sigma": 5.0, "recompute": True, "source_ids": "all_sources"},
                    seconds=40,
                )
            )
            day += timedelta(days=1)
        drafts.append(
            ops.job(
                rng,
                JobType.ESE_DETECT,
                JobState.PENDING,
                self.now - timedelta(seconds=30),
                {"min_sigma": 5.0, "recompute": True, "source_ids": "all_sources"},
            )
        )
        # Two operator cancellations, so every job state is represented.
        last_done = [i for i in sorted(recent) if s.states[i] == GroupState.COMPLETED][-2:]
        for i in last_done:
            ms = ops.ms_path(root, s.group_ids[i])
            drafts.append(
                ops.job(
                    rng,
                    JobType.IMAGE,
                    JobState.CANCELLED,
                    s.updated_at[i] + timedelta(minutes=2),
                    {
                        "ms_path": ms,
                        "imsize": 2048,
                        "cell_arcsec": 3.0,
                        "backend": "wsclean",
                        "niter": 20000,
                        "pbcor": True,
                        "note": "deep re-image requested by operator",
                    },
                    group_pk=group_pk[i],
                    ms=ms,
                )
            )
        return drafts
