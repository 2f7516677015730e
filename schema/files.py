"""Measurement Sets, calibration tables and UVH5 files: registry nodes and what their files say.

``MeasurementSet`` and ``CalTable`` are database rows (the pipeline's registry); each links
to its file view (``MsFile``, ``CalTableFile``), read from disk with python-casacore when
asked for - null when the file is not on disk under the configured roots. ``UvhFile`` is a
raw subband file, its header read with h5py. File reads are batched per request
(``resolvers.files``), links go through DataLoaders.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from dsa110.ops.files.caltables import CalTableSummary
from dsa110.ops.files.ms import MsMetadata
from dsa110.ops.files.uvh5 import UvhHeader
from loaders.entities import (
    CALTABLE,
    CALTABLE_PRODUCTS,
    CALTABLE_QA_ARTIFACTS,
    GROUP,
    MS,
    MS_CAL_TABLES,
    MS_IMAGES,
    MS_PRODUCTS,
    MS_QA_ARTIFACTS,
)
from resolvers import files, links, qa
from schema import filevalues as fv
from schema.base import GraphInfo, Loaded, Node

if TYPE_CHECKING:
    from schema.job_types import DataProduct
    from schema.qa import QaArtifact
    from schema.types import Group, Image

GroupRef = Annotated["Group", strawberry.lazy("schema.types")]
ImageRef = Annotated["Image", strawberry.lazy("schema.types")]
ProductRef = Annotated["DataProduct", strawberry.lazy("schema.job_types")]
ArtifactRef = Annotated["QaArtifact", strawberry.lazy("schema.qa")]


@strawberry.type(description="What a Measurement Set on disk holds, read with python-casacore.")
class MsFile:
    meta: strawberry.Private[MsMetadata]

    @strawberry.field
    def path(self) -> str:
        return str(self.meta.path)

    @strawberry.field(description="Bytes on disk (a Float: sizes exceed 32-bit Int).")
    def size_bytes(self) -> float:
        return float(self.meta.size_bytes)

    @strawberry.field
    def n_rows(self) -> int:
        return self.meta.n_rows

    @strawberry.field(description="Start of the first integration, MJD (UTC).")
    def start_mjd(self) -> float | None:
        return self.meta.start_mjd

    @strawberry.field(description="End of the last integration, MJD (UTC).")
    def end_mjd(self) -> float | None:
        return self.meta.end_mjd

    @strawberry.field
    def mid_mjd(self) -> float | None:
        return self.meta.mid_mjd

    @strawberry.field
    def start_time(self) -> datetime | None:
        return fv.utc(self.meta.start_mjd)

    @strawberry.field
    def end_time(self) -> datetime | None:
        return fv.utc(self.meta.end_mjd)

    @strawberry.field
    def duration_s(self) -> float | None:
        return self.meta.duration_s

    @strawberry.field(description="Median integration (INTERVAL), seconds.")
    def integration_s(self) -> float | None:
        return self.meta.integration_s

    @strawberry.field
    def fields(self) -> list[fv.MsField]:
        return self.meta.fields

    @strawberry.field
    def spectral_windows(self) -> list[fv.MsSpectralWindow]:
        return self.meta.spectral_windows

    @strawberry.field
    def antennas(self) -> list[fv.MsAntenna]:
        return self.meta.antennas

    @strawberry.field(description="Distinct cross-correlation baselines in the data.")
    def n_baselines(self) -> int:
        return self.meta.n_baselines

    @strawberry.field(description="Channels over all spectral windows.")
    def n_channels(self) -> int:
        return self.meta.n_channels

    @strawberry.field
    def freq_min_hz(self) -> float | None:
        return self.meta.freq_min_hz

    @strawberry.field
    def freq_max_hz(self) -> float | None:
        return self.meta.freq_max_hz

    @strawberry.field(description="Sum of the spectral windows' bandwidths, Hz.")
    def bandwidth_hz(self) -> float:
        return self.meta.bandwidth_hz

    @strawberry.field(description="Which of DATA, CORRECTED_DATA, MODEL_DATA, FLOAT_DATA exist.")
    def data_columns(self) -> list[str]:
        return self.meta.data_columns

    @strawberry.field(description="CORRECTED_DATA exists (calibration was applied).")
    def calibrated(self) -> bool:
        return self.meta.calibrated

    @strawberry.field
    def telescope(self) -> str | None:
        return self.meta.telescope

    @strawberry.field(description="Median declination of the fields' phase centres.")
    def pointing_dec_deg(self) -> float | None:
        return self.meta.pointing_dec_deg

    @strawberry.field(description="The drift scan's RA: local sidereal time at the mid-time.")
    def meridian_ra_deg(self) -> float | None:
        return files.meridian_ra_deg(self.meta)

    @strawberry.field(description="Flag statistics (reads the FLAG column: the slow part).")
    async def flagging(self, info: GraphInfo) -> fv.MsFlagging:
        return fv.flagging(await files.ms_flags(info.context, self.meta))

    @strawberry.field(description="VLA calibrators near the pointing, best first.")
    async def calibrator_matches(
        self, info: GraphInfo, radius_deg: float = 1.5, top_n: int = 5
    ) -> fv.CalibratorMatches:
        found = await files.calibrator_matches(info.context, self.meta, radius_deg, top_n)
        return fv.calibrator_matches(
            files.meridian_ra_deg(self.meta), self.meta.pointing_dec_deg, self.meta.mid_mjd, found
        )

    @strawberry.field(description="Calibration tables named after this MS beside it, newest first.")
    async def cal_tables(self, info: GraphInfo) -> list[CalTableFile]:
        return [CalTableFile(summary=s) for s in await files.caltables_next_to(info.context, self.meta)]

    @strawberry.field(description="Can the table at `caltablePath` be applied to this MS?")
    async def validate_cal_table(self, info: GraphInfo, caltable_path: str) -> fv.CalTableCompatibility:
        table, result = await files.compatibility(info.context, self.meta, caltable_path)
        return fv.compatibility(self.meta, table, result)

    @strawberry.field(description="Calibration QA from this MS's K, BP and G tables.")
    async def calibration_qa(self, info: GraphInfo) -> fv.CalibrationQa:
        return fv.calibration_qa(await qa.calibration_report(info.context, self.meta))

    @strawberry.field(description="Which expected tables, antennas and times have solutions.")
    async def cal_table_completeness(self, info: GraphInfo) -> fv.CalTableCompleteness:
        return fv.completeness(await qa.completeness(info.context, self.meta))

    @strawberry.field(description="Bandpass amplitude and phase per antenna (PNG, made on demand).")
    async def bandpass_plots(self, info: GraphInfo) -> list[fv.QaPlot]:
        return [
            fv.QaPlot(
                filename=path.name,
                path=str(path),
                url=qa.plot_url(self.meta, path.name),
                kind="bandpass",
                antenna_id=antenna,
            )
            for antenna, path in await qa.bandpass_plots(info.context, self.meta)
        ]

    @strawberry.field(
        description="Flagging and median gain per spectral window (PNG), if a bandpass table exists."
    )
    async def spw_plot(self, info: GraphInfo) -> fv.QaPlot | None:
        path = await qa.spw_plot(info.context, self.meta)
        if path is None:
            return None
        return fv.QaPlot(
            filename=path.name, path=str(path), url=qa.plot_url(self.meta, None), kind="spw", antenna_id=None
        )

    @strawberry.field(description="The registry's row for this MS, if it is registered.")
    async def measurement_set(self, info: GraphInfo) -> MeasurementSet | None:
        return await info.context.loaders.by_key(MS, "path").load(str(self.meta.path))


@strawberry.type(description="What a calibration table on disk holds, read from its own rows.")
class CalTableFile:
    summary: strawberry.Private[CalTableSummary]

    @strawberry.field
    def path(self) -> str:
        return str(self.summary.path)

    @strawberry.field
    def name(self) -> str:
        return self.summary.path.name

    @strawberry.field(description="K, BA, BP, GA, GP, G, 2G or FLUX (from the name, else VisCal).")
    def table_type(self) -> str | None:
        return self.summary.table_type

    @strawberry.field(description="delay, bandpass, gain or flux.")
    def kind(self) -> str | None:
        return self.summary.kind

    @strawberry.field(description="Legacy apply order: K 10, BA 20, BP 30, GA 40, GP 50, 2G 60, FLUX 70.")
    def apply_order(self) -> int | None:
        return self.summary.apply_order

    @strawberry.field(description="The table's VisCal keyword, e.g. `B Jones`.")
    def vis_cal(self) -> str | None:
        return self.summary.vis_cal

    @strawberry.field(description="The MS it was solved from (MSName keyword).")
    def ms_name(self) -> str | None:
        return self.summary.ms_name

    @strawberry.field
    def n_rows(self) -> int:
        return self.summary.n_rows

    @strawberry.field
    def size_bytes(self) -> float:
        return float(self.summary.size_bytes)

    @strawberry.field
    def modified(self) -> datetime:
        return self.summary.modified

    @strawberry.field(description="Antennas with solutions (ANTENNA1).")
    def antennas(self) -> list[int]:
        return self.summary.antennas

    @strawberry.field(description="Reference antennas of the solutions (ANTENNA2).")
    def reference_antennas(self) -> list[int]:
        return self.summary.reference_antennas

    @strawberry.field
    def spw_ids(self) -> list[int]:
        return self.summary.spw_ids

    @strawberry.field
    def freq_min_hz(self) -> float | None:
        return self.summary.freq_min_hz

    @strawberry.field
    def freq_max_hz(self) -> float | None:
        return self.summary.freq_max_hz

    @strawberry.field
    def start_mjd(self) -> float | None:
        return self.summary.start_mjd

    @strawberry.field
    def end_mjd(self) -> float | None:
        return self.summary.end_mjd

    @strawberry.field(description="Flagged over all (channel x polarisation) solutions.")
    def flagged_fraction(self) -> float:
        return self.summary.flagged_fraction

    @strawberry.field
    def snr_mean(self) -> float | None:
        return self.summary.snr_mean

    @strawberry.field
    def per_antenna(self) -> list[fv.AntennaSolutions]:
        return self.summary.per_antenna

    @strawberry.field
    def per_spw(self) -> list[fv.SpwSolutions]:
        return [fv.spw_solutions(s) for s in self.summary.per_spw]

    @strawberry.field(description="The registry's row for this table, if it is registered.")
    async def cal_table(self, info: GraphInfo) -> CalTable | None:
        return await info.context.loaders.by_key(CALTABLE, "path").load(str(self.summary.path))


@strawberry.type(description="A Measurement Set made from one observation group.")
class MeasurementSet(Node):
    group_pk: strawberry.Private[int | None]
    path: str
    start_mjd: float | None
    end_mjd: float | None
    mid_mjd: float | None
    status: str
    stage: str
    cal_applied: bool
    field_name: str | None
    ra_deg: float | None
    dec_deg: float | None
    created_at: datetime
    stage_updated_at: datetime | None
    size_bytes: float | None = strawberry.field(description="Bytes on disk when last discovered.")

    @strawberry.field(description="Integer key of the registry row (legacy `ms_index` id).")
    def ms_id(self) -> int:
        return self.pk

    @strawberry.field
    def group(self, info: GraphInfo) -> Loaded[GroupRef | None]:
        return links.one(info.context, GROUP, self.group_pk)

    @strawberry.field
    async def images(self, info: GraphInfo) -> list[ImageRef]:
        return await links.all_of(info.context, MS_IMAGES, self.pk)

    @strawberry.field(description="Calibration tables solved from this Measurement Set.")
    async def cal_tables(self, info: GraphInfo) -> list[CalTable]:
        return await links.all_of(info.context, MS_CAL_TABLES, self.pk)

    @strawberry.field(description="Data products of this MS (the MS itself, its calibrated copy).")
    async def data_products(self, info: GraphInfo) -> list[ProductRef]:
        return await links.all_of(info.context, MS_PRODUCTS, self.pk)

    @strawberry.field(description="QA plots, notebooks and reports about this MS.")
    async def qa_artifacts(self, info: GraphInfo) -> list[ArtifactRef]:
        return await links.all_of(info.context, MS_QA_ARTIFACTS, self.pk)

    @strawberry.field(description="The file itself (null when it is not on disk under the data roots).")
    async def file(self, info: GraphInfo) -> MsFile | None:
        meta = await files.ms_metadata(info.context, self.path)
        return None if meta is None else MsFile(meta=meta)


@strawberry.type(description="A calibration table registered for a validity window.")
class CalTable(Node):
    source_ms_pk: strawberry.Private[int | None]
    set_name: str
    path: str
    table_type: str = strawberry.field(description="K, BA, BP, GA, GP, 2G or FLUX.")
    order_index: int
    cal_field: str | None
    refant: str | None
    created_at: datetime
    valid_start_mjd: float | None
    valid_end_mjd: float | None
    status: str
    notes: str | None

    @strawberry.field
    def source_ms(self, info: GraphInfo) -> Loaded[MeasurementSet | None]:
        return links.one(info.context, MS, self.source_ms_pk)

    @strawberry.field(description="The data product this table is, if registered as one.")
    async def data_products(self, info: GraphInfo) -> list[ProductRef]:
        return await links.all_of(info.context, CALTABLE_PRODUCTS, self.pk)

    @strawberry.field(description="QA plots made from this table.")
    async def qa_artifacts(self, info: GraphInfo) -> list[ArtifactRef]:
        return await links.all_of(info.context, CALTABLE_QA_ARTIFACTS, self.pk)

    @strawberry.field(description="The table itself (null when it is not on disk under the data roots).")
    async def file(self, info: GraphInfo) -> CalTableFile | None:
        summary = await files.caltable_summary(info.context, self.path)
        return None if summary is None else CalTableFile(summary=summary)


@strawberry.type(description="A raw UVH5 subband file; its header read with h5py (never its data).")
class UvhFile:
    path: str
    subband_idx: int | None = strawberry.field(description="From the file name `..._sbNN.hdf5`.")
    group_pk: strawberry.Private[int | None] = None

    @strawberry.field
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @strawberry.field(description="The header (null when the file is not on disk under the data roots).")
    async def header(self, info: GraphInfo) -> UvhFileHeader | None:
        found = await files.uvh_header(info.context, self.path)
        return None if found is None else fv.from_domain(UvhFileHeader, found, **_header_extras(found))

    @strawberry.field
    def group(self, info: GraphInfo) -> Loaded[GroupRef | None]:
        return links.one(info.context, GROUP, self.group_pk)


def _header_extras(h: UvhHeader) -> dict[str, Any]:
    return {
        "size_bytes": float(h.size_bytes),
        "start_time": fv.utc(h.start_mjd),
        "end_time": fv.utc(h.end_mjd),
        "mid_mjd": h.mid_mjd,
    }


@strawberry.type(description="The UVH5 header of a subband file.")
class UvhFileHeader:
    size_bytes: float
    modified: datetime
    group_id: str | None
    subband: int | None
    telescope: str | None
    n_antennas: int
    antenna_names: list[str]
    n_baselines: int
    n_times: int
    n_freqs: int
    n_pols: int
    integration_s: float | None
    start_mjd: float | None
    end_mjd: float | None
    mid_mjd: float | None
    start_time: datetime | None
    end_time: datetime | None
    freq_min_hz: float | None
    freq_max_hz: float | None
    channel_width_hz: float | None
    phase_type: str = strawberry.field(description="`sidereal`, `phased` or `drift`.")
    phase_center_ra_deg: float | None = strawberry.field(
        description="For a drift scan: the meridian at mid-time."
    )
    phase_center_dec_deg: float | None
