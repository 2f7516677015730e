"""External catalogs with no network (as on this machine and many observatory networks).

The unavailable path is exercised for real: astroquery tries to reach each service and
fails. The cache path is exercised by filling ``external_catalog_cache`` first.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from astropy import units as u
from astropy.table import MaskedColumn, Table
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from dsa110.science.errors import ExternalServiceUnavailable, ScienceInputError
from dsa110.science.external import (
    cache_key,
    normalise_table,
    query_external,
    run_blocking_with_timeout,
)

RA, DEC = 150.0, 37.0


@pytest.mark.parametrize("service", ["simbad", "ned", "gaia"])
async def test_no_network_is_a_clear_unavailable_error(engine: AsyncEngine, service: str) -> None:
    with pytest.raises(ExternalServiceUnavailable) as err:
        await query_external(engine, service, RA, DEC, 30.0, timeout_s=5.0)
    assert err.value.code == "UNAVAILABLE"
    assert service in err.value.message
    async with engine.connect() as conn:  # a failure is not cached
        assert (
            await conn.execute(select(func.count()).select_from(t.external_catalog_cache))
        ).scalar_one() == 0


async def test_a_hanging_query_is_cut_off_by_the_hard_timeout() -> None:
    release = threading.Event()
    try:
        with pytest.raises(ExternalServiceUnavailable) as err:
            await run_blocking_with_timeout("simbad", lambda: release.wait(60), timeout_s=0.2)
        assert "did not answer within 0.2 s" in err.value.message
    finally:
        release.set()


async def fill_cache(
    engine: AsyncEngine, service: str, fetched_at: datetime, objects: list[dict[str, object]]
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(t.external_catalog_cache).values(
                service=service,
                query_key=cache_key(RA, DEC, 30.0),
                fetched_at=fetched_at,
                result={"objects": objects},
            )
        )


M87_LIKE = [
    {"name": "far", "ra_deg": RA, "dec_deg": DEC + 20 / 3600, "object_type": "QSO", "extra": {"z": 0.5}},
    {"name": "near", "ra_deg": RA, "dec_deg": DEC + 2 / 3600, "object_type": "Radio", "extra": {}},
]


async def test_fresh_cache_entry_is_served_without_the_network(engine: AsyncEngine) -> None:
    fetched = datetime.now(UTC) - timedelta(hours=1)
    await fill_cache(engine, "simbad", fetched, M87_LIKE)
    # A position within the key's rounding hits the same entry; separations use the exact position.
    result = await query_external(engine, "simbad", RA + 0.00001, DEC, 30.0)
    assert result.cached and not result.stale
    assert result.fetched_at == fetched
    assert [o.name for o in result.objects] == ["near", "far"]
    assert result.objects[0].separation_arcsec == pytest.approx(2.0, abs=0.05)
    assert result.objects[1].object_type == "QSO" and result.objects[1].extra == {"z": 0.5}


async def test_stale_cache_is_served_marked_stale_when_the_service_is_down(engine: AsyncEngine) -> None:
    await fill_cache(engine, "ned", datetime.now(UTC) - timedelta(days=90), M87_LIKE)
    result = await query_external(engine, "ned", RA, DEC, 30.0, timeout_s=5.0)
    assert result.cached and result.stale
    assert len(result.objects) == 2


async def test_cache_is_per_service_and_per_radius(engine: AsyncEngine) -> None:
    await fill_cache(engine, "simbad", datetime.now(UTC), M87_LIKE)
    with pytest.raises(ExternalServiceUnavailable):
        await query_external(engine, "gaia", RA, DEC, 30.0, timeout_s=5.0)
    with pytest.raises(ExternalServiceUnavailable):
        await query_external(engine, "simbad", RA, DEC, 31.0, timeout_s=5.0)


async def test_corrupt_cache_entry_is_a_miss(engine: AsyncEngine) -> None:
    await fill_cache(engine, "simbad", datetime.now(UTC), [{"junk": 1}])
    with pytest.raises(ExternalServiceUnavailable):
        await query_external(engine, "simbad", RA, DEC, 30.0, timeout_s=5.0)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("vizier", RA, DEC, 30.0), "BAD_SERVICE"),
        (("simbad", RA, 95.0, 30.0), "BAD_POSITION"),
        (("simbad", float("nan"), DEC, 30.0), "BAD_POSITION"),
        (("simbad", RA, DEC, 0.0), "BAD_SIZE"),
        (("simbad", RA, DEC, 1e5), "BAD_SIZE"),
        (("simbad", RA, DEC, float("inf")), "BAD_SIZE"),
    ],
)
async def test_bad_arguments_are_input_errors(
    engine: AsyncEngine, args: tuple[str, float, float, float], code: str
) -> None:
    with pytest.raises(ScienceInputError) as err:
        await query_external(engine, *args)
    assert err.value.code == code


async def test_bad_timeout_is_an_input_error(engine: AsyncEngine) -> None:
    for timeout in (0.0, -1.0, 1e6):
        with pytest.raises(ScienceInputError):
            await query_external(engine, "simbad", RA, DEC, 30.0, timeout_s=timeout)


def test_normalise_simbad_tap_table() -> None:
    table = Table(
        {
            "main_id": ["M  87", "NVSS J123049+122328"],
            "ra": [187.70593, 187.7054] * u.deg,
            "dec": [12.39112, 12.391] * u.deg,
            "otype": ["AGN", "Radio"],
            "coo_err_maj": MaskedColumn([0.1, np.nan], mask=[False, True]),
        }
    )
    objects = normalise_table("simbad", table, 187.70593, 12.39112)
    assert [o.name for o in objects] == ["M  87", "NVSS J123049+122328"]
    assert objects[0].separation_arcsec == pytest.approx(0.0, abs=1e-6)
    assert objects[0].object_type == "AGN"
    assert objects[1].extra == {"coo_err_maj": None}


def test_normalise_ned_and_gaia_tables() -> None:
    ned = Table({"No.": [1], "Object Name": [b"MESSIER 087"], "RA": [187.70593], "DEC": [12.39112],
                 "Type": ["G"], "Redshift": [0.00428]})  # fmt: skip
    (obj,) = normalise_table("ned", ned, 187.7, 12.39)
    assert (obj.name, obj.object_type, obj.extra["Redshift"]) == ("MESSIER 087", "G", 0.00428)
    assert obj.separation_arcsec == pytest.approx(
        float(np.degrees(np.arccos(
            np.sin(np.radians(12.39)) * np.sin(np.radians(12.39112))
            + np.cos(np.radians(12.39)) * np.cos(np.radians(12.39112)) * np.cos(np.radians(0.00593))
        ))) * 3600, rel=1e-6,
    )  # fmt: skip
    gaia = Table({"source_id": np.array([3946945413106333696], dtype=np.int64), "designation": ["Gaia DR3 1"],
                  "ra": [150.0], "dec": [37.0], "phot_g_mean_mag": [np.float32(17.5)]})  # fmt: skip
    (star,) = normalise_table("gaia", gaia, 150.0, 37.0)
    assert star.name == "Gaia DR3 1" and star.object_type is None
    assert star.extra == {"source_id": 3946945413106333696, "phot_g_mean_mag": 17.5}
    assert normalise_table("gaia", None, 1.0, 1.0) == []


def test_normalise_rejects_a_table_without_positions() -> None:
    with pytest.raises(ValueError):
        normalise_table("simbad", Table({"main_id": ["x"]}), 1.0, 1.0)
