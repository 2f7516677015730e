"""The data-product lifecycle on both backends: finalize, auto and manual publishing with
real file moves, failures recorded and retried, concurrent publishers."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.errors import ConflictError
from dsa110.ops import products
from dsa110.settings import Settings

SHM = Path("/dev/shm")


def _settings(tmp_path: Path, products_root: Path | None = None) -> Settings:
    return Settings(data_dir=tmp_path / "data", products_root=products_root)


def _stage_ms(settings: Settings, name: str = "g.ms") -> Path:
    ms = settings.staging_dir / "ms" / name
    (ms / "ANTENNA").mkdir(parents=True)
    (ms / "table.dat").write_bytes(b"t" * 100)
    (ms / "ANTENNA" / "table.dat").write_bytes(b"a" * 10)
    return ms


async def _register(engine: AsyncEngine, path: Path, data_type: str = "ms") -> dict:
    return await products.register_product(
        engine, data_id=str(path), data_type=data_type, stage_path=str(path)
    )


def _tree(path: Path) -> dict[str, int]:
    return {str(p.relative_to(path)): p.lstat().st_size for p in sorted(path.rglob("*"))}


async def test_finalize_publishes_when_the_criteria_hold(engine: AsyncEngine, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ms = _stage_ms(settings)
    before = _tree(ms)
    await _register(engine, ms)
    row, published = await products.finalize(engine, settings, str(ms), validation_status="validated")
    assert published and row["status"] == "published" and row["publish_mode"] == "auto"
    dest = Path(row["published_path"])
    assert dest == settings.products_dir / "ms" / "g.ms" and _tree(dest) == before and not ms.exists()
    assert row["publish_attempts"] == 0 and row["published_at"] is not None


async def test_criteria_hold_back_publication(engine: AsyncEngine, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    image = settings.staging_dir / "images" / "x.fits"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"SIMPLE")
    await _register(engine, image, "image")
    row, published = await products.finalize(engine, settings, str(image), validation_status="validated")
    assert not published and image.exists()
    assert products.criteria(row).reasons == ["qa_not_passed"]  # images need QA passed too
    await products.set_auto_publish(engine, str(image), False)
    row, published = await products.finalize(engine, settings, str(image), qa_status="passed")
    assert not published and products.criteria(row).reasons == ["disabled"]
    done = await products.publish_product(engine, settings, str(image))
    assert done["status"] == "published" and done["publish_mode"] == "manual"
    with pytest.raises(ConflictError, match="already published"):
        await products.publish_product(engine, settings, str(image))
    with pytest.raises(products.InputError):
        await products.finalize(engine, settings, str(image), qa_status="splendid")


@pytest.mark.skipif(
    not SHM.is_dir() or os.stat(SHM).st_dev == os.stat("/tmp").st_dev, reason="needs a second filesystem"
)
async def test_a_publish_failing_halfway_leaves_the_product_staged(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """Staging and products on different filesystems: the MS is copied file by file. A named
    pipe inside it cannot be copied, after other files were: the partial copy is removed, the
    product stays staged with the error recorded, and its files are untouched."""
    products_root = Path(str(SHM / f"dsa110-test-{os.getpid()}-{tmp_path.name}"))
    settings = _settings(tmp_path, products_root)
    try:
        ms = _stage_ms(settings)
        os.mkfifo(ms / "zz_pipe")
        before = _tree(ms)
        await _register(engine, ms)
        with pytest.raises(products.PublishFailed) as failed:
            await products.publish_product(engine, settings, str(ms))
        assert "named pipe" in failed.value.message
        row = await products.get_product(engine, str(ms))
        assert row["status"] == "staging" and row["publish_attempts"] == 1
        assert "named pipe" in row["publish_error"] and row["publish_failed_at"] is not None
        assert _tree(ms) == before  # every file still where it was
        assert list((products_root / "ms").iterdir()) == []  # no partial copy left behind
        stats = await products.publish_stats(engine)
        assert (stats.failed_publishes, stats.recent_failures_24h) == (1, 1)
        # The operator removes the bad entry and retries: the copy now lands in one piece.
        (ms / "zz_pipe").unlink()
        done = await products.retry_publish(engine, settings, str(ms))
        assert (
            done["status"] == "published" and done["publish_attempts"] == 0 and done["publish_error"] is None
        )
        assert Path(done["published_path"]).parent == products_root / "ms" and not ms.exists()
    finally:
        shutil.rmtree(products_root, ignore_errors=True)


async def test_automatic_publishing_gives_up_after_three_failures(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    missing = settings.staging_dir / "ms" / "gone.ms"
    await _register(engine, missing)
    for attempt in (1, 2, 3):
        with pytest.raises(products.PublishFailed):
            await products.publish_product(engine, settings, str(missing), mode="auto")
        assert (await products.get_product(engine, str(missing)))["publish_attempts"] == attempt
    with pytest.raises(ConflictError, match="gave up"):
        await products.publish_product(engine, settings, str(missing), mode="auto")
    assert [r["data_id"] for r in await products.failed_products(engine, min_attempts=3)] == [str(missing)]
    assert (await products.publish_stats(engine)).max_attempts_exceeded == 1
    _stage_ms(settings, "gone.ms")  # the files turn up; a retry resets the count and publishes
    assert (await products.retry_publish(engine, settings, str(missing)))["status"] == "published"


async def test_a_product_outside_the_staging_area_is_not_moved(engine: AsyncEngine, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    elsewhere = tmp_path / "elsewhere.fits"
    elsewhere.write_bytes(b"x")
    await _register(engine, elsewhere, "image")
    with pytest.raises(products.PublishFailed, match="not inside the staging area"):
        await products.publish_product(engine, settings, str(elsewhere))
    assert elsewhere.exists()


async def test_concurrent_publishers_one_wins(engine: AsyncEngine, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ms = _stage_ms(settings)
    await _register(engine, ms)
    results = await asyncio.gather(
        *(products.publish_product(engine, settings, str(ms)) for _ in range(4)), return_exceptions=True
    )
    wins = [r for r in results if isinstance(r, dict)]
    assert len(wins) == 1 and all(isinstance(r, ConflictError) for r in results if r not in wins)
    assert len(list((settings.products_dir / "ms").iterdir())) == 1


async def test_lineage_and_registration_rules(engine: AsyncEngine, tmp_path: Path) -> None:
    raw = await products.register_product(
        engine, data_id="raw_g", data_type="raw", stage_path="/x/g_sb00.hdf5"
    )
    ms = await products.register_product(
        engine, data_id="/x/g.ms", data_type="ms", stage_path="/x/g.ms", parents=["raw_g"]
    )
    assert raw["status"] == ms["status"] == "staging"
    with pytest.raises(ConflictError):
        await products.register_product(engine, data_id="raw_g", data_type="raw", stage_path="/y")
    with pytest.raises(products.NotFoundError):
        await products.register_product(
            engine, data_id="c", data_type="ms", stage_path="/c", parents=["nope"]
        )
    with pytest.raises(products.InputError):
        await products.link_products(engine, "raw_g", "raw_g")
    await products.link_products(engine, "raw_g", "/x/g.ms")  # already linked: no duplicate edge
