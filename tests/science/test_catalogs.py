"""Catalog cone search, cross-match, overlay and ingest on real SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from dsa110.errors import InputError
from dsa110.science.catalogs import (
    catalog_overlay,
    cone_search,
    cross_match_sources,
    iau_name,
    ingest_catalog,
    ingest_catalog_main,
    insert_catalog_rows,
)
from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import open_image
from dsa110.science.healpix import healpix_index
from tests.science.fits_factory import sin_header, write_image


def offset(ra: float, dec: float, pa_deg: float, sep_arcsec: float) -> tuple[float, float]:
    moved = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(pa_deg * u.deg, sep_arcsec * u.arcsec)
    return float(moved.ra.deg), float(moved.dec.deg)


def row(name: str, ra: float, dec: float, flux: float | None = 0.1, catalog: str = "nvss") -> dict[str, Any]:
    return {
        "catalog": catalog,
        "name": name,
        "ra_deg": ra,
        "dec_deg": dec,
        "healpix": int(healpix_index(ra, dec)),
        "flux_jy": flux,
        "flux_err_jy": None,
        "major_arcsec": None,
        "minor_arcsec": None,
        "pa_deg": None,
    }


def true_sep_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    return float(
        SkyCoord(ra1, dec1, unit="deg").separation(SkyCoord(ra2, dec2, unit="deg")).to_value(u.arcsec)
    )


@pytest.mark.parametrize(
    ("ra0", "dec0"), [(150.0, 37.0), (0.05, 10.0), (359.98, -20.0), (45.0, 89.8), (200.0, -89.9)]
)
async def test_cone_returns_exactly_the_rows_inside_nearest_first(
    engine: AsyncEngine, ra0: float, dec0: float
) -> None:
    radius_arcsec = 1800.0
    seps = [5.0, 100.0, 1000.0, 1799.0, 1801.0, 2500.0, 7200.0]
    rows = [
        row(f"S{i}_{pa}", *offset(ra0, dec0, pa, s))
        for i, s in enumerate(seps)
        for pa in (0.0, 97.0, 221.0, 300.0)
    ]
    await insert_catalog_rows(engine, "nvss", rows, replace=True)
    found = await cone_search(engine, ra0, dec0, radius_arcsec / 3600.0)
    want = {r["name"] for r in rows if true_sep_arcsec(ra0, dec0, r["ra_deg"], r["dec_deg"]) <= radius_arcsec}
    assert {e.name for e in found} == want
    assert len(want) == 16
    assert [e.separation_arcsec for e in found] == sorted(e.separation_arcsec for e in found)
    for e in found:
        assert e.separation_arcsec == pytest.approx(true_sep_arcsec(ra0, dec0, e.ra_deg, e.dec_deg), abs=1e-4)


async def test_cone_agrees_with_brute_force_on_random_rows(engine: AsyncEngine) -> None:
    rng = np.random.default_rng(0)
    ra = rng.uniform(140, 160, 3000)
    dec = rng.uniform(30, 44, 3000)
    await insert_catalog_rows(
        engine, "nvss", [row(f"R{i}", ra[i], dec[i]) for i in range(3000)], replace=True
    )
    everything = SkyCoord(ra, dec, unit="deg")
    for ra0, dec0, radius in [(150.0, 37.0, 0.5), (141.0, 31.0, 1.3), (155.5, 40.2, 0.05)]:
        found = {e.name for e in await cone_search(engine, ra0, dec0, radius)}
        inside = everything.separation(SkyCoord(ra0, dec0, unit="deg")).deg <= radius
        assert found == {f"R{i}" for i in np.nonzero(inside)[0]}


async def test_cone_filters_by_catalog_flux_and_limit(engine: AsyncEngine) -> None:
    rows = [
        row("A", 10.0, 5.0, 0.5),
        row("B", 10.001, 5.0, 0.05),
        row("C", 10.002, 5.0, 2.0, catalog="first"),
    ]
    await insert_catalog_rows(engine, "nvss", rows[:2], replace=True)
    await insert_catalog_rows(engine, "first", rows[2:], replace=True)
    assert [e.name for e in await cone_search(engine, 10.0, 5.0, 0.1)] == ["A", "B", "C"]
    assert [e.name for e in await cone_search(engine, 10.0, 5.0, 0.1, catalog="nvss")] == ["A", "B"]
    assert [e.name for e in await cone_search(engine, 10.0, 5.0, 0.1, min_flux_jy=0.1)] == ["A", "C"]
    assert [e.name for e in await cone_search(engine, 10.0, 5.0, 0.1, limit=1)] == ["A"]
    assert await cone_search(engine, 200.0, -5.0, 0.1) == []


@pytest.mark.parametrize(
    ("ra", "dec", "radius"), [(10.0, 95.0, 0.1), (10.0, 5.0, -1.0), (10.0, 5.0, 0.0), (10.0, 5.0, 50.0),
                              (float("nan"), 5.0, 0.1), (10.0, 5.0, float("inf"))]
)  # fmt: skip
async def test_bad_cones_are_input_errors(engine: AsyncEngine, ra: float, dec: float, radius: float) -> None:
    with pytest.raises(InputError):
        await cone_search(engine, ra, dec, radius)


async def test_bad_limit_is_an_input_error(engine: AsyncEngine) -> None:
    for limit in (0, -3, 10**9):
        with pytest.raises(ScienceInputError):
            await cone_search(engine, 1.0, 1.0, 0.1, limit=limit)


async def insert_sources(engine: AsyncEngine, positions: list[tuple[str, float, float]]) -> dict[str, int]:
    async with engine.begin() as conn:
        for name, ra, dec in positions:
            await conn.execute(
                insert(t.sources).values(
                    source_id=name, ra_deg=ra, dec_deg=dec, healpix=int(healpix_index(ra, dec))
                )
            )
        result = await conn.execute(select(t.sources.c.source_id, t.sources.c.id))
        return {name: pk for name, pk in result.all()}


async def test_cross_match_writes_every_entry_within_the_radius(engine: AsyncEngine) -> None:
    src = {"s1": (150.0, 37.0), "s2": (150.5, 37.2), "s3": (10.0, -40.0)}
    pks = await insert_sources(engine, [(k, *v) for k, v in src.items()])
    cat = [
        row("near1", *offset(*src["s1"], 30.0, 2.0)),
        row("near1b", *offset(*src["s1"], 200.0, 6.9)),  # confusion: a second entry within 7.5"
        row("far1", *offset(*src["s1"], 90.0, 8.1)),
        row("near2", *offset(*src["s2"], 300.0, 4.0)),
        row("first2", *offset(*src["s2"], 10.0, 1.0), catalog="first"),
    ]
    await insert_catalog_rows(engine, "nvss", cat[:4], replace=True)
    await insert_catalog_rows(engine, "first", cat[4:], replace=True)
    matches = await cross_match_sources(engine)
    by_pair = {(m.source_pk, m.catalog_pk): m.separation_arcsec for m in matches}
    assert len(matches) == 4
    async with engine.connect() as conn:
        names = dict((await conn.execute(select(t.catalog_sources.c.name, t.catalog_sources.c.id))).all())
        stored = (await conn.execute(select(func.count()).select_from(t.cross_matches))).scalar_one()
    assert stored == 4
    assert by_pair[(pks["s1"], names["near1"])] == pytest.approx(2.0, abs=1e-4)
    assert by_pair[(pks["s1"], names["near1b"])] == pytest.approx(6.9, abs=1e-4)
    assert by_pair[(pks["s2"], names["first2"])] == pytest.approx(1.0, abs=1e-4)
    # Re-running is idempotent, and a per-catalog run touches only that catalog's matches.
    assert len(await cross_match_sources(engine)) == 4
    assert len(await cross_match_sources(engine, catalog="first", radius_arcsec=0.5)) == 0
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(t.cross_matches))).scalar_one() == 3
    assert len(await cross_match_sources(engine, source_pks=[pks["s2"]])) == 2


async def test_cross_match_rejects_a_bad_radius(engine: AsyncEngine) -> None:
    for radius in (0.0, -1.0, float("nan"), 1e6):
        with pytest.raises(ScienceInputError):
            await cross_match_sources(engine, radius_arcsec=radius)


async def test_overlay_returns_pixel_positions_of_rows_on_the_image(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    header = sin_header(nx=100, ny=100, cell_arcsec=6.0, rotation_deg=10.0)
    image = open_image(write_image(tmp_path / "i.fits", np.zeros((100, 100)), header))

    def at(x: float, y: float) -> tuple[float, float]:
        ra, dec = image.pixel_to_world(x, y)
        return float(ra), float(dec)

    on = [row(f"on{i}", *at(10 + 20 * i, 80 - 15 * i), flux=0.1 * i) for i in range(4)]
    corner_out = [row("off", *at(-3.0, -3.0))]
    await insert_catalog_rows(engine, "nvss", on + corner_out, replace=True)
    overlay = await catalog_overlay(engine, image)
    assert [e.name for e, _, _ in overlay] == ["on3", "on2", "on1", "on0"]
    for entry, x, y in overlay:
        i = int(entry.name[2:])
        assert (x, y) == pytest.approx((10 + 20 * i, 80 - 15 * i), abs=1e-6)


# --- ingest -------------------------------------------------------------------------


def nvss_fits(path: Path) -> Path:
    """VizieR VIII/65 style: sexagesimal strings and mJy fluxes."""
    table = Table(
        {
            "NVSS": ["123456+420312", "000001-001002"],
            "RAJ2000": ["12 34 56.78", "00 00 01.00"],
            "DEJ2000": ["+42 03 12.3", "-00 10 02.0"],
            "S1.4": [123.4, 2.5] * u.mJy,
            "e_S1.4": [3.7, 0.4] * u.mJy,
            "MajAxis": [20.0, np.nan] * u.arcsec,
            "MinAxis": [10.0, np.nan] * u.arcsec,
            "PA": [45.0, np.nan] * u.deg,
        }
    )
    table.write(path, format="fits")
    return path


async def test_ingest_nvss_fits(engine: AsyncEngine, tmp_path: Path) -> None:
    assert await ingest_catalog(engine, nvss_fits(tmp_path / "nvss.fits"), "nvss") == 2
    async with engine.connect() as conn:
        rows = {r.name: r for r in (await conn.execute(select(t.catalog_sources))).all()}
    first = rows["123456+420312"]
    assert first.ra_deg == pytest.approx((12 + 34 / 60 + 56.78 / 3600) * 15, abs=1e-9)
    assert first.dec_deg == pytest.approx(42 + 3 / 60 + 12.3 / 3600, abs=1e-9)
    assert first.flux_jy == pytest.approx(0.1234)
    assert first.flux_err_jy == pytest.approx(0.0037)
    assert (first.major_arcsec, first.minor_arcsec, first.pa_deg) == pytest.approx((20.0, 10.0, 45.0))
    assert first.healpix == int(healpix_index(first.ra_deg, first.dec_deg))
    second = rows["000001-001002"]
    assert second.dec_deg == pytest.approx(-(10 / 60 + 2 / 3600), abs=1e-9)
    assert second.major_arcsec is None
    # Ingesting again replaces the catalog instead of duplicating it.
    assert await ingest_catalog(engine, tmp_path / "nvss.fits", "nvss") == 2
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(t.catalog_sources))).scalar_one() == 2
    with pytest.raises(ScienceInputError):
        await ingest_catalog(engine, tmp_path / "nvss.fits", "nvss", replace=False)


async def test_ingest_first_csv_without_units_and_generated_names(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    path = tmp_path / "first.csv"
    path.write_text("RAJ2000,DEJ2000,Fpeak,Fint,Rms,Maj,Min,PA\n150.1,37.2,5.1,7.25,0.15,3.1,1.2,30\n")
    assert await ingest_catalog(engine, path, "first") == 1
    async with engine.connect() as conn:
        only = (await conn.execute(select(t.catalog_sources))).one()
    assert only.flux_jy == pytest.approx(0.00725)  # Fint in mJy, preferred over Fpeak
    assert only.name == iau_name("FIRST", 150.1, 37.2) == "FIRST J100024.0+371200"


async def test_ingest_vlass_votable(engine: AsyncEngine, tmp_path: Path) -> None:
    table = Table(
        {
            "Component_name": ["VLASS1QLCIR J100000.00+370000.0"],
            "RA": [150.0] * u.deg,
            "DEC": [37.0] * u.deg,
            "Total_flux": [12.0] * u.mJy,
            "E_Total_flux": [0.5] * u.mJy,
            "DC_Maj": [1.5] * u.arcsec,
            "DC_Min": [0.5] * u.arcsec,
            "DC_PA": [120.0] * u.deg,
        }
    )
    table.write(tmp_path / "vlass.xml", format="votable")
    assert await ingest_catalog(engine, tmp_path / "vlass.xml", "vlass") == 1
    found = await cone_search(engine, 150.0, 37.0, 0.001)
    assert found[0].name == "VLASS1QLCIR J100000.00+370000.0"
    assert found[0].flux_jy == pytest.approx(0.012)
    assert found[0].pa_deg == pytest.approx(120.0)


@pytest.mark.parametrize(
    ("content", "kwargs"),
    [
        ("ra,dec,flux\n1,2,3\n", {}),  # a generic flux column with no unit is ambiguous
        ("x,y\n1,2\n", {}),  # no position columns
        ("ra,dec\n1,95\n", {}),  # impossible declination
        ("ra,dec\n1,\n", {}),  # missing declination
        ("name,ra,dec\na,1,2\na,3,4\n", {}),  # duplicate names
        ("ra,dec\n", {}),  # no rows
        ("ra,dec,flux_jy\n1,2,abc\n", {}),  # non-numeric flux
        ('name,ra,dec\n"' + "x" * 200 + '",1,2\n', {}),  # name longer than the column
        ("ra,dec\n1,2\n", {"columns": {"flux_jy": "nope"}}),
        ("ra,dec\n1,2\n", {"columns": {"colour": "ra"}}),
        ("\x00\x01garbage", {}),
    ],
)
async def test_malformed_tables_are_bad_table_errors(
    engine: AsyncEngine, tmp_path: Path, content: str, kwargs: dict[str, Any]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ScienceInputError) as err:
        await ingest_catalog(engine, path, "test", **kwargs)
    assert err.value.code == "BAD_TABLE"
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(t.catalog_sources))).scalar_one() == 0


async def test_flux_unit_option_and_explicit_columns(engine: AsyncEngine, tmp_path: Path) -> None:
    path = tmp_path / "generic.csv"
    path.write_text("id,alpha,delta,flux\nx1,1.0,2.0,350\n")
    columns = {"ra_deg": "alpha", "dec_deg": "delta"}
    assert await ingest_catalog(engine, path, "mine", columns=columns, flux_unit="mJy") == 1
    found = await cone_search(engine, 1.0, 2.0, 0.01)
    assert found[0].name == "x1"
    assert found[0].flux_jy == pytest.approx(0.35)


async def test_bad_catalog_label_and_missing_file(engine: AsyncEngine, tmp_path: Path) -> None:
    path = nvss_fits(tmp_path / "n.fits")
    for label in ("", "x" * 17, "nvss; drop table"):
        with pytest.raises(ScienceInputError):
            await ingest_catalog(engine, path, label)
    with pytest.raises(ScienceInputError) as err:
        await ingest_catalog(engine, tmp_path / "missing.fits", "nvss")
    assert err.value.code == "FILE_NOT_FOUND"


def test_cli_ingests_into_the_given_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"
    path = nvss_fits(tmp_path / "nvss.fits")
    assert ingest_catalog_main([str(path), "--catalog", "nvss", "--database-url", url]) == 0
    assert "rows=2" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    assert ingest_catalog_main([str(bad), "--catalog", "nvss", "--database-url", url]) == 2
    assert "BAD_TABLE" in capsys.readouterr().err
