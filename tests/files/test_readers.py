"""The readers agree with the files: MS metadata with what casacore reads directly, cal-table
summaries with values computed by hand, UVH5 headers with what was written."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
from casacore import tables as ct

from dsa110.ops.files.caltables import circular_std_deg, read_caltable, tables_next_to, type_from_name
from dsa110.ops.files.ms import read_ms
from dsa110.ops.files.uvh5 import read_header
from dsa110.ops.files.validation import Registration, validate
from dsa110.science.site import local_sidereal_deg
from tests.files.conftest import FLAGGED_ANTENNA, REFANT, START_MJD, RadioFiles


def test_ms_metadata_equals_what_casacore_reads(radio: RadioFiles) -> None:
    meta = read_ms(radio.ms)
    with ct.table(str(radio.ms), ack=False) as main:
        time, interval = main.getcol("TIME"), main.getcol("INTERVAL")
        flags = main.getcol("FLAG")
        a1, a2 = main.getcol("ANTENNA1"), main.getcol("ANTENNA2")
        assert meta.n_rows == main.nrows()
        assert set(meta.data_columns) == {"DATA", "CORRECTED_DATA", "MODEL_DATA"} & set(main.colnames())
    assert meta.start_mjd == pytest.approx((time - interval / 2).min() / 86400, abs=1e-9)
    assert meta.end_mjd == pytest.approx((time + interval / 2).max() / 86400, abs=1e-9)
    assert meta.integration_s == pytest.approx(np.median(interval))
    assert meta.n_baselines == len({(a, b) for a, b in zip(a1, a2, strict=True) if a != b})
    with ct.table(str(radio.ms / "FIELD"), ack=False) as field:
        phase = field.getcol("PHASE_DIR")
        assert [f.name for f in meta.fields] == list(field.getcol("NAME"))
    assert [f.ra_deg for f in meta.fields] == pytest.approx(np.degrees(phase[:, 0, 0]) % 360)
    assert [f.dec_deg for f in meta.fields] == pytest.approx(np.degrees(phase[:, 0, 1]))
    with ct.table(str(radio.ms / "SPECTRAL_WINDOW"), ack=False) as spw:
        freqs, widths = spw.getcol("CHAN_FREQ"), spw.getcol("CHAN_WIDTH")
    assert meta.freq_min_hz == pytest.approx((freqs - widths / 2).min())
    assert meta.freq_max_hz == pytest.approx((freqs + widths / 2).max())
    assert meta.n_channels == freqs.size
    with ct.table(str(radio.ms / "ANTENNA"), ack=False) as ant:
        assert [a.name for a in meta.antennas] == list(ant.getcol("NAME"))
    assert meta.flags is not None
    assert meta.flags.total_fraction == pytest.approx(flags.mean())
    bad = (a1 == FLAGGED_ANTENNA) | (a2 == FLAGGED_ANTENNA)
    assert meta.flags.per_antenna[FLAGGED_ANTENNA] == 1.0
    assert meta.flags.per_antenna[0] == pytest.approx(flags[(a1 == 0) | (a2 == 0)].mean())
    assert flags[~bad].mean() == pytest.approx(1 / radio.spec.band.n_chan)  # the one RFI channel
    assert meta.flags.rfi_channels() == radio.spec.band.n_spw  # that channel in each SPW
    assert meta.size_bytes > 0 and meta.telescope == "DSA_110"


def test_caltable_summary_matches_hand_computed_values(radio: RadioFiles) -> None:
    summary = read_caltable(radio.tables["B"])
    with ct.table(str(radio.tables["B"]), ack=False) as table:
        values, flags = table.getcol("CPARAM"), table.getcol("FLAG")
        antennas = table.getcol("ANTENNA1")
    assert summary.table_type == "BP" and summary.kind == "bandpass" and summary.vis_cal == "B Jones"
    assert summary.ms_name == radio.ms.name
    assert summary.reference_antennas == [REFANT]
    assert summary.flagged_fraction == pytest.approx(flags.mean())
    mine = values[antennas == 0][~flags[antennas == 0]]
    by_antenna = {a.antenna_id: a for a in summary.per_antenna}
    assert by_antenna[0].amp_mean == pytest.approx(np.abs(mine).mean(), rel=1e-6)
    assert by_antenna[0].amp_std == pytest.approx(np.abs(mine).std(), rel=1e-5)
    r = abs(np.exp(1j * np.angle(mine)).mean())
    assert by_antenna[0].phase_scatter_deg == pytest.approx(
        math.degrees(math.sqrt(-2 * math.log(r))), rel=1e-6
    )
    assert by_antenna[FLAGGED_ANTENNA].flagged_fraction == 1.0
    assert by_antenna[FLAGGED_ANTENNA].amp_mean is None
    assert by_antenna[REFANT].phase_scatter_deg == pytest.approx(0.0, abs=1e-3)  # the reference: phase 0
    delays = read_caltable(radio.tables["K"])
    assert delays.kind == "delay" and delays.per_antenna[REFANT].delay_mean_ns == 0.0


def test_circular_scatter_by_hand() -> None:
    # Phases +/-10 deg around 180: a plain std would see ~360 deg of spread.
    phases = np.radians([170.0, -170.0, 170.0, -170.0])
    r = math.cos(math.radians(10.0))
    assert circular_std_deg(phases) == pytest.approx(math.degrees(math.sqrt(-2 * math.log(r))))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("x_kcal", "K"),
        ("x_2kcal", "K"),
        ("x_bpcal", "BP"),
        ("x.bpcal", "BP"),
        ("x_gacal", "GA"),
        ("x_gpcal", "GP"),
        ("x_2gcal", "2G"),
        ("x_flux.cal", "FLUX"),
        ("cal.K", "K"),
        ("x.ms", None),
        ("readme", None),
    ],
)
def test_types_from_names(name: str, kind: str | None) -> None:
    assert type_from_name(name) == kind


def test_tables_beside_an_ms(radio: RadioFiles) -> None:
    assert {p.name for p in tables_next_to(radio.ms)} == {p.name for p in radio.tables.values()}


def test_validation_issues_and_warnings(radio: RadioFiles, tmp_path) -> None:
    from dsa110.demo.radio_files import Band, MsSpec, write_caltable, write_ms

    meta = read_ms(radio.ms)
    table = read_caltable(radio.tables["B"])
    ok = validate(meta, table)
    assert ok.compatible and any("every solution flagged" in w for w in ok.warnings)
    # Another band, more antennas, another day: three issues.
    other = write_ms(
        tmp_path / "other.ms",
        MsSpec(start_mjd=START_MJD + 3, dec_deg=42.0, n_antennas=8, band=Band(start_hz=1.45e9)),
    )
    foreign = read_caltable(write_caltable(tmp_path / "other_bpcal", other, "B", refant=7))
    result = validate(meta, foreign)
    assert not result.compatible
    text = " ".join(result.issues)
    assert "antennas in the table but not in the MS: 6, 7" in text
    assert "no frequency overlap" in text and "validity window" in text
    assert "reference antenna 7 is not in the MS" in text
    # A registered window that excludes the MS, and a registered refant that differs.
    late = validate(meta, table, Registration(valid_start_mjd=START_MJD + 1, refant="DSA-004"))
    assert any("validity window" in i for i in late.issues)
    assert any("registered refant" in w for w in late.warnings)


def test_uvh5_header_only(radio: RadioFiles) -> None:
    header = read_header(radio.uvh5)
    spec = radio.uvh_spec
    assert header.group_id == "2025-10-30T12:00:00" and header.subband == 3
    assert header.n_antennas == spec.n_antennas and header.n_times == spec.n_times
    assert header.n_baselines == spec.n_antennas * (spec.n_antennas + 1) // 2
    assert header.start_mjd == pytest.approx(START_MJD, abs=1e-9)
    assert header.end_mjd == pytest.approx(START_MJD + spec.n_times * spec.integration_s / 86400, abs=1e-9)
    freqs = spec.freqs_hz()
    assert header.freq_min_hz == pytest.approx(freqs[0] - spec.chan_width_hz / 2)
    assert header.phase_type == "drift" and header.phase_center_dec_deg == pytest.approx(42.0)
    assert header.phase_center_ra_deg == pytest.approx(local_sidereal_deg([header.mid_mjd])[0])
    with h5py.File(radio.uvh5, "r") as f:
        assert "visdata" in f["Data"]  # there, and never read by read_header


def test_a_file_that_is_not_uvh5_is_refused(tmp_path) -> None:
    from dsa110.ops.files.uvh5 import NotUvh5

    bogus = tmp_path / "x_sb00.hdf5"
    bogus.write_bytes(b"not hdf5")
    with pytest.raises(NotUvh5):
        read_header(bogus)
