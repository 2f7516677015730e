"""Calibration QA of a Measurement Set over /api: metrics, bandpass plots per antenna, the SPW
overview plot and table completeness, all drawn from the MS's own calibration tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from compat_rest.errors import not_found
from compat_rest.files import data_file
from compat_rest.params import Args, PathStr
from compat_rest.routing import RestRoute, graphql_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, obj
from dsa110.settings import Settings

TAG = "qa"
MS_PATH = PathStr("ms_path", "MS path without its leading `/`", max_length=4096)

CAL_QA = """
query RestCalQa($path: String!) {
  msFile(path: $path) {
    path
    flagging { totalFraction rfiChannels }
    calibrationQa {
      overallQuality successRate phaseRmsDeg ampRms
      kMetrics { ...M } bpMetrics { ...M } gMetrics { ...M }
      perSpw { spwId totalSolutions flaggedSolutions fractionFlagged nChannels channelsWithHighFlagging
               avgFlaggedPerChannel maxFlaggedInChannel isProblematic }
    }
  }
}
fragment M on TableMetrics { tableType path flagFraction avgSnr ampMean ampStd phaseScatterDeg }
"""
PLOTS = """
query RestBandpass($path: String!) {
  msFile(path: $path) { path bandpassPlots { filename path url antennaId } }
}
"""
SPW_PLOT = "query RestSpwPlot($path: String!) { msFile(path: $path) { spwPlot { path filename } } }"
COMPLETENESS = """
query RestCompleteness($path: String!) {
  msFile(path: $path) {
    calTableCompleteness {
      expectedTypes existingPaths missingTypes completeness missingAntennas missingTimes hasIssues
    }
  }
}
"""


def png(path: str, settings: Settings) -> Any:
    return data_file(path, settings.file_roots, media_type="image/png", filename=path.rsplit("/", 1)[-1])


def calibration(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    f = data["msFile"]
    q = f["calibrationQa"]

    def metrics(m: dict[str, Any] | None) -> dict[str, Any] | None:
        if m is None:
            return None
        return {
            "flag_fraction": m["flagFraction"],
            "avg_snr": m["avgSnr"],
            "amp_mean": m["ampMean"],
            "amp_std": m["ampStd"],
            "phase_scatter_deg": m["phaseScatterDeg"],
            "path": m["path"],
        }

    return {
        "ms_path": f["path"],
        "job_id": None,
        "k_metrics": metrics(q["kMetrics"]),
        "bp_metrics": metrics(q["bpMetrics"]),
        "g_metrics": metrics(q["gMetrics"]),
        "overall_quality": q["overallQuality"],
        "flags_total": f["flagging"]["totalFraction"],
        "per_spw_stats": [
            {
                "spw_id": s["spwId"],
                "total_solutions": s["totalSolutions"],
                "flagged_solutions": s["flaggedSolutions"],
                "fraction_flagged": s["fractionFlagged"],
                "n_channels": s["nChannels"],
                "channels_with_high_flagging": s["channelsWithHighFlagging"],
                "avg_flagged_per_channel": s["avgFlaggedPerChannel"],
                "max_flagged_in_channel": s["maxFlaggedInChannel"],
                "is_problematic": s["isProblematic"],
            }
            for s in q["perSpw"]
        ],
        "calibration_quality": {
            "phase_rms": q["phaseRmsDeg"],
            "amp_rms": q["ampRms"],
            "success_rate": q["successRate"],
        },
        "flagging": {
            "percent_flagged": 100.0 * f["flagging"]["totalFraction"],
            "rfi_events": f["flagging"]["rfiChannels"],
        },
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


def plots(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    found = data["msFile"]["bandpassPlots"]
    listing = [
        {
            "filename": p["filename"],
            "path": p["path"],
            "url": p["url"],
            "antenna": p["antennaId"],
            "type": "amplitude+phase",
            "spw": None,
        }
        for p in found
    ]
    out: dict[str, Any] = {
        "ms_path": data["msFile"]["path"],
        "plot_dir": found[0]["path"].rsplit("/", 1)[0] if found else None,
        "plots": listing,
        "count": len(listing),
    }
    if not found:
        out["message"] = "no bandpass table beside this MS"
    return out


def completeness(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    c = data["msFile"]["calTableCompleteness"]
    return {
        "completeness": c["completeness"],
        "missing_antennas": c["missingAntennas"],
        "missing_times": c["missingTimes"],
        "expected_tables": c["expectedTypes"],
        "existing_tables": c["existingPaths"],
        "missing_tables": c["missingTypes"],
        "has_issues": c["hasIssues"],
    }


def routes(settings: Settings) -> list[RestRoute]:
    ms_only: dict[str, Any] = {"params": [MS_PATH], "errors": (400, 404, 422)}
    return [
        graphql_route(
            "GET",
            "/qa/calibration/{ms_path:path}/bandpass-plots/{filename}",
            PLOTS,
            lambda data, args: _one_plot(data, args, settings),
            variables=lambda args: {"path": args["ms_path"]},
            params=[MS_PATH, PathStr("filename", "bandpass_antenna_<n>.png", max_length=64)],
            response=None,
            media_type="image/png",
            errors=(400, 404, 422),
            tag=TAG,
            summary="One bandpass plot (PNG)",
        ),
        graphql_route(
            "GET",
            "/qa/calibration/{ms_path:path}/bandpass-plots",
            PLOTS,
            plots,
            variables=lambda args: {"path": args["ms_path"]},
            response=obj(ms_path=STR, plots=arr(obj(filename=STR, path=STR, url=STR)), count=INT),
            tag=TAG,
            summary="Bandpass amplitude and phase plots per antenna, made from the bandpass table",
            **ms_only,
        ),
        graphql_route(
            "GET",
            "/qa/calibration/{ms_path:path}/spw-plot",
            SPW_PLOT,
            lambda data, _args: _spw_png(data, settings),
            variables=lambda args: {"path": args["ms_path"]},
            response=None,
            media_type="image/png",
            tag=TAG,
            summary="Flagging and median gain per spectral window (PNG)",
            **ms_only,
        ),
        graphql_route(
            "GET",
            "/qa/calibration/{ms_path:path}/caltable-completeness",
            COMPLETENESS,
            completeness,
            variables=lambda args: {"path": args["ms_path"]},
            response=obj(
                completeness=NUM, missing_antennas=arr(INT), missing_times=arr(TIME), has_issues=BOOL
            ),
            tag=TAG,
            summary="Expected calibration tables, and antennas and times without solutions",
            **ms_only,
        ),
        graphql_route(
            "GET",
            "/qa/calibration/{ms_path:path}",
            CAL_QA,
            calibration,
            variables=lambda args: {"path": args["ms_path"]},
            response=obj(
                ms_path=STR,
                overall_quality=STR,
                calibration_quality=ANY,
                flagging=ANY,
                per_spw_stats=arr(ANY),
            ),
            tag=TAG,
            summary="Calibration QA of an MS from its calibration tables",
            **ms_only,
        ),
    ]


def _one_plot(data: dict[str, Any], args: Args, settings: Settings) -> Any:
    for plot in data["msFile"]["bandpassPlots"]:
        if plot["filename"] == args["filename"]:
            return png(plot["path"], settings)
    raise not_found(f"no bandpass plot {args['filename'][:64]!r} for this MS")


def _spw_png(data: dict[str, Any], settings: Settings) -> Any:
    plot = data["msFile"]["spwPlot"]
    if plot is None:
        raise not_found("no bandpass table beside this MS")
    return png(plot["path"], settings)
