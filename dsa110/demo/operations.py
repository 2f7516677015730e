"""Operational records around the science: Measurement Sets, calibration tables, mosaics,
data products with lineage, and jobs with logs (legacy-pipeline-facts §1.2, §1.3, §4.2,
§4.7). Pure row builders: ids of rows they refer to are passed in.

Conventions kept from the legacy pipeline: MS and image ``data_id`` is the file's absolute
path; a mosaic's is ``mosaic_<first group_id>_<unix time>``; calibration sets are
``cal_<group_id>`` with K/BP/GP tables at apply order 10/30/50 next to the MS; products
older than a day are ``published`` (``published_path`` under ``products/<type>/``, a
record only: the demo does not move files), newer ones ``staging``. Lineage edges point
from input (parent) to product (child), all ``derived_from``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dsa110.db.enums import GroupState, JobState, JobType, MosaicStatus, ProductStatus
from dsa110.demo.observe import Schedule, from_mjd

Row = dict[str, Any]
CAL_TABLE_TYPES = (("K", 10, "kcal"), ("BP", 30, "bpcal"), ("GP", 50, "gpcal"))
REFANT = "1"  # antenna 1 of the demo's MS (DSA-002): the reference of the tables it writes
JOB_WINDOW_GROUPS = 36  # the last three hours of groups carry per-group jobs
JOB_WINDOW_DAYS = 1.0
DEMO_WORKER = "demo-worker"  # the worker the demo's running jobs were claimed by (gone)
DEMO_LEASE_S = 30.0  # the queue's default lease
DEMO_MAX_ATTEMPTS = 2  # the pipeline stages' allowance: a lost worker's job runs again


@dataclass(frozen=True)
class MosaicPlan:
    name: str
    data_id: str
    path: str
    status: str
    created_at: datetime
    start_mjd: float
    end_mjd: float
    members: list[int]  # image positions (0-based, in the images list)
    first_group_id: str


def ms_path(data_dir: Path, group_id: str) -> str:
    return str(data_dir / "ms" / f"{group_id}.ms")


def image_path(data_dir: Path, group_id: str) -> str:
    return str(data_dir / "images" / f"{group_id}.img-image-pb.fits")


def has_ms(state: str, group_index: int, failed_with_ms: set[int]) -> bool:
    return state in (GroupState.COMPLETED, GroupState.IN_PROGRESS) or group_index in failed_with_ms


def ms_row(schedule: Schedule, i: int, group_pk: int, data_dir: Path) -> Row:
    state = schedule.states[i]
    done = state == GroupState.COMPLETED
    status, stage = {
        GroupState.COMPLETED: ("done", "imaged"),
        GroupState.IN_PROGRESS: ("converted", "converted"),
    }.get(GroupState(state), ("failed", "calibrated"))
    cal = schedule.calibrators[i]
    created = schedule.received_at[i] + timedelta(seconds=45)
    return {
        "path": ms_path(data_dir, schedule.group_ids[i]),
        "group_pk": group_pk,
        "start_mjd": float(schedule.start_mjd[i]),
        "end_mjd": float(schedule.start_mjd[i] + 5.0 / 1440.0),
        "mid_mjd": float(schedule.mid_mjd[i]),
        "status": status,
        "stage": stage,
        "cal_applied": done,
        "field_name": cal[0]["name"] if cal else "drift",
        "ra_deg": float(schedule.pointing_ra_deg[i]),
        "dec_deg": schedule.dec_deg,
        "created_at": created,
        "stage_updated_at": schedule.updated_at[i] if done else created,
    }


def calibration_groups(schedule: Schedule) -> list[int]:
    """Per UTC day, the completed group with the strongest calibrator (weighted flux)."""
    best: dict[str, tuple[float, int]] = {}
    for i, matches in enumerate(schedule.calibrators):
        if not matches or schedule.states[i] != GroupState.COMPLETED:
            continue
        day = schedule.group_ids[i][:10]
        flux = max(m["weighted_flux"] for m in matches)
        if day not in best or flux > best[day][0]:
            best[day] = (flux, i)
    return sorted(i for _, i in best.values())


def cal_table_rows(
    schedule: Schedule, cal_groups: list[int], ms_pk: dict[int, int], data_dir: Path, failed_set: int | None
) -> list[Row]:
    rows = []
    for k, i in enumerate(cal_groups):
        gid = schedule.group_ids[i]
        latest = k == len(cal_groups) - 1
        status = "failed" if i == failed_set else "active" if latest else "retired"
        mid = float(schedule.mid_mjd[i])
        for table_type, order, suffix in CAL_TABLE_TYPES:
            rows.append(
                {
                    "set_name": f"cal_{gid}",
                    "path": str(data_dir / "ms" / f"{gid}_{suffix}"),
                    "table_type": table_type,
                    "order_index": order,
                    "cal_field": schedule.calibrators[i][0]["name"],
                    "refant": REFANT,
                    "created_at": schedule.updated_at[i],
                    "valid_start_mjd": mid - 0.5,
                    "valid_end_mjd": None if latest else mid + 0.5,
                    "status": status,
                    "source_ms_pk": ms_pk[i],
                    "notes": "solve failed: bandpass SNR below 3 on 40 % of channels"
                    if status == "failed"
                    else None,
                }
            )
    return rows


def plan_mosaics(
    group_ids: list[str],
    image_mjd: NDArray[np.float64],
    image_created: list[datetime],
    end_mjd: float,
    data_dir: Path,
) -> list[MosaicPlan]:
    """One mosaic per UTC hour with images; the hour still being observed is ``building``."""
    hours = np.floor(image_mjd * 24.0 + 1e-9).astype(np.int64)
    plans = []
    for hour in np.unique(hours).tolist():
        members = np.flatnonzero(hours == hour).tolist()
        start, stop = hour / 24.0, (hour + 1) / 24.0
        begin = from_mjd(start)
        name = f"mosaic_{begin:%Y-%m-%d_%H}-00"
        complete = stop <= end_mjd
        created = max(image_created[m] for m in members) + timedelta(minutes=4)
        plans.append(
            MosaicPlan(
                name=name,
                data_id=f"mosaic_{group_ids[members[0]]}_{int(created.timestamp())}",
                path=str(data_dir / "mosaics" / f"{name}.fits"),
                status=MosaicStatus.COMPLETED if complete else MosaicStatus.BUILDING,
                created_at=created,
                start_mjd=start,
                end_mjd=stop,
                members=members,
                first_group_id=group_ids[members[0]],
            )
        )
    return plans


def product_row(
    rng: np.random.Generator,
    *,
    data_id: str,
    data_type: str,
    stage_path: str,
    created: datetime,
    now: datetime,
    data_dir: Path,
    metadata: dict[str, Any],
    **links: int | None,
) -> Row:
    """A data-registry row; older than a day: published, else staging (a few publishing)."""
    age = now - created
    qa = str(rng.choice(["passed", "warning", "failed"], p=[0.94, 0.05, 0.01]))
    row: Row = {
        "data_id": data_id,
        "data_type": data_type,
        "stage_path": stage_path,
        "created_at": created,
        "staged_at": created,
        "metadata": metadata,
        "image_pk": None,
        "mosaic_pk": None,
        "ms_pk": None,
        "publish_attempts": 0,
        "publish_error": None,
        "auto_publish": True,
    }
    row.update(links)
    type_dir = {"ms": "ms", "image": "images", "mosaic": "mosaics"}.get(data_type, "misc")
    if age > timedelta(days=1) and qa != "failed":
        published = created + timedelta(minutes=float(rng.uniform(20, 240)))
        row.update(
            status=ProductStatus.PUBLISHED,
            published_path=str(data_dir / "products" / type_dir / Path(stage_path).name),
            published_at=published,
            publish_mode="auto" if rng.random() < 0.97 else "manual",
            qa_status=qa,
            validation_status="validated",
            finalization_status="finalized",
        )
        return row
    publishing = age < timedelta(hours=1) and rng.random() < 0.1
    finalized = age > timedelta(hours=2)
    row.update(
        status=ProductStatus.PUBLISHING if publishing else ProductStatus.STAGING,
        published_path=None,
        published_at=None,
        publish_mode=None,
        qa_status=qa if finalized else "pending",
        validation_status="validated" if finalized else "pending",
        finalization_status="finalized" if finalized else "pending",
    )
    if qa == "failed" and age > timedelta(days=1):
        row.update(
            publish_attempts=3, publish_error="QA failed: dynamic range below threshold; not auto-published"
        )
    return row


@dataclass
class JobDraft:
    row: Row
    logs: list[str]
    inputs: list[str]  # data_ids
    outputs: list[str]


def _times(start: datetime, state: str, rng: np.random.Generator, seconds: float) -> tuple[Any, Any]:
    if state in (JobState.PENDING, JobState.CANCELLED):
        return None, None
    started = start + timedelta(seconds=float(rng.uniform(1, 20)))
    if state == JobState.RUNNING:
        return started, None
    return started, started + timedelta(seconds=seconds * float(rng.uniform(0.7, 1.3)))


def job(
    rng: np.random.Generator,
    kind: JobType,
    state: JobState,
    created: datetime,
    params: dict[str, Any],
    *,
    group_pk: int | None = None,
    ms: str | None = None,
    seconds: float = 120.0,
    error: str | None = None,
    inputs: list[str] | None = None,
    outputs: list[str] | None = None,
) -> JobDraft:
    started, finished = _times(created, state, rng, seconds)
    # A running job holds a lease of a worker that is gone (the demo's): it ran out a lease
    # period after the start, so the queue's reaper queues the job again when a service starts.
    lease: Row = dict.fromkeys(("lease_owner", "worker", "executor", "heartbeat_at", "lease_expires_at"))
    lease.update(attempts=0, max_attempts=1)  # the table's defaults
    if state == JobState.RUNNING:
        lease = {
            "attempts": 1,
            "max_attempts": DEMO_MAX_ATTEMPTS,
            "lease_owner": DEMO_WORKER,
            "worker": DEMO_WORKER,
            "executor": "local",
            "heartbeat_at": started,
            "lease_expires_at": started + timedelta(seconds=DEMO_LEASE_S),
        }
    title = {
        JobType.CONVERT: "Conversion",
        JobType.CALIBRATE: "Calibration Solve",
        JobType.APPLY: "Calibration Apply",
        JobType.IMAGE: "Imaging",
        JobType.MOSAIC: "Mosaic",
        JobType.ESE_DETECT: "ESE Detection",
    }.get(kind, str(kind))
    logs: list[str] = []
    if started is not None:
        logs.append(f"=== Starting {title} (New Pipeline) ===")
        logs.extend(f"{k}: {v}" for k, v in list(params.items())[:3])
        if state == JobState.DONE:
            logs.append(f"\u2713 {title} complete")
        elif state == JobState.FAILED:
            logs.append(f"ERROR: {error}")
        else:
            logs.append(f"{title} in progress...")
    elif state == JobState.CANCELLED:
        logs.append("Job cancelled by operator before it started")
    return JobDraft(
        row={
            "type": str(kind),
            "state": str(state),
            "params": params,
            "group_pk": group_pk,
            "ms_path": ms,
            "batch_id": None,
            "created_at": created,
            "started_at": started,
            "finished_at": finished,
            "error": error if state == JobState.FAILED else None,
            **lease,
        },
        logs=logs,
        inputs=inputs or [],
        outputs=(outputs or []) if state == JobState.DONE else [],
    )
