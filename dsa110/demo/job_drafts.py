"""The demo's job history: the jobs the pipeline would have run for the demo's groups,
calibrations and mosaics, with their parameters, states, logs and products.

Every group in the last ``ops.JOB_WINDOW_GROUPS`` (and every failed one) gets its convert,
apply and image jobs; every calibration group its calibrate job; recent mosaics their
mosaic job; each day an ESE detection run; and two operator cancellations, so every job
state is represented. ``JobHistory(...).drafts()`` returns them unsorted and unwritten:
the writer (``dsa110.demo.writer``) inserts them with their logs and product links.

Each job's parameters are those its kind's check (``dsa110.ops.stages.params``,
``dsa110.ops.ese_detect``) stores when such a job is queued, unset options left out: a
pending demo job runs as queued, and a failed or cancelled one can be retried as it is. The
groups whose convert job is not done (:func:`unconverted_groups`) get their subband files
on disk, and those whose MS a failed or cancelled job reads (:func:`retried_ms_groups`)
their MS (``dsa110.demo.files``), so those jobs can really run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

from dsa110.db.enums import GroupState, JobState, JobType, MosaicStatus
from dsa110.demo import operations as ops
from dsa110.demo.instrument import TILE_CELL_ARCSEC, TILE_NPIX
from dsa110.demo.observe import Schedule

MOSAIC_MAX_IMAGES: Final = 200


def ese_detect_params() -> dict[str, Any]:
    """A pass over every source (``min_sigma`` is the legacy form's threshold, recorded only)."""
    return {"all": True, "source_pks": [], "min_sigma": 5.0}


def image_params(root: Path, ms: str, imsize: int, cell_arcsec: float, niter: int) -> dict[str, Any]:
    """An ``image`` job's parameters as its kind stores them: the written image is in ``images/``."""
    return {
        "ms_path": ms,
        "imsize": imsize,
        "cell_arcsec": cell_arcsec,
        "niter": niter,
        "weighting": "briggs",
        "robust": 0.5,
        "datacolumn": "corrected",
        "photometry": True,
        "output_dir": str(root / "images"),
    }


def convert_state(state: str, group_index: int, failed_with_ms: set[int]) -> JobState:
    """The state of a group's convert job: pending and in-progress groups are still being
    converted, a failed group without an MS failed in conversion, the others converted."""
    if state == GroupState.FAILED and group_index not in failed_with_ms:
        return JobState.FAILED
    return {
        GroupState.PENDING: JobState.PENDING,
        GroupState.IN_PROGRESS: JobState.RUNNING,
    }.get(GroupState(state), JobState.DONE)


def unconverted_groups(schedule: Schedule, failed_with_ms: set[int]) -> list[int]:
    """The groups whose convert job the demo leaves pending, running or failed (so it runs,
    or can be retried): their subband files must be on disk. Oldest first."""
    recent = range(max(0, len(schedule) - ops.JOB_WINDOW_GROUPS), len(schedule))
    failed = {i for i, st in enumerate(schedule.states) if st == GroupState.FAILED}
    return [
        i
        for i in sorted(set(recent) | failed)
        if schedule.states[i] != GroupState.COLLECTING
        and convert_state(schedule.states[i], i, failed_with_ms) != JobState.DONE
    ]


def cancelled_image_groups(schedule: Schedule) -> list[int]:
    """The groups of the two operator-cancelled deep re-images: the newest completed ones."""
    recent = range(max(0, len(schedule) - ops.JOB_WINDOW_GROUPS), len(schedule))
    return [i for i in recent if schedule.states[i] == GroupState.COMPLETED][-2:]


def retried_ms_groups(schedule: Schedule, failed_with_ms: set[int], failed_cal: int | None) -> list[int]:
    """The groups whose MS a failed or cancelled demo job reads (failed images, the failed
    calibration, the cancelled re-images): their MS must be on disk for a retry to run."""
    chosen = set(failed_with_ms) | set(cancelled_image_groups(schedule))
    if failed_cal is not None:
        chosen.add(failed_cal)
    return sorted(chosen)


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
        cal_sets = {g: f"cal_{s.group_ids[g]}" for g in self.cal_groups}
        for i in sorted(recent | failed):
            state, gid = s.states[i], s.group_ids[i]
            if state == GroupState.COLLECTING:
                continue
            ms, img = ops.ms_path(root, gid), ops.image_path(root, gid)
            base = s.received_at[i]
            convert_params = {
                "group_id": gid,
                "output_dir": str(root / "ms"),
                "overwrite": True,
                "missing_subbands": [],
            }
            drafts.append(
                ops.job(
                    rng,
                    JobType.CONVERT,
                    convert_state(state, i, self.failed_with_ms),
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
                applied = [name for g, name in cal_sets.items() if g <= i]
                drafts.append(
                    ops.job(
                        rng,
                        JobType.APPLY,
                        JobState.DONE,
                        base + timedelta(seconds=50),
                        {"ms_path": ms, **({"set_name": applied[-1]} if applied else {})},
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
                        image_params(root, ms, TILE_NPIX, TILE_CELL_ARCSEC, 1000),
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
                        "refant": ops.REFANT,
                        "set_name": cal_sets[g],
                        "solint": "inf",
                        "minsnr": 3.0,
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
                        "start_mjd": mp.start_mjd,
                        "end_mjd": mp.end_mjd,
                        "name": mp.name,
                        "max_images": MOSAIC_MAX_IMAGES,
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
                    ese_detect_params(),
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
                ese_detect_params(),
            )
        )
        # Two operator cancellations, so every job state is represented.
        for i in cancelled_image_groups(s):
            ms = ops.ms_path(root, s.group_ids[i])
            drafts.append(
                ops.job(
                    rng,
                    JobType.IMAGE,
                    JobState.CANCELLED,
                    s.updated_at[i] + timedelta(minutes=2),
                    image_params(root, ms, 2048, 3.0, 20000),  # a deep re-image an operator asked for
                    group_pk=group_pk[i],
                    ms=ms,
                )
            )
        return drafts
