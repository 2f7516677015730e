"""``serve --follow-legacy``: the server imports the pipeline's writes and its subscribers hear them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from pathlib import Path

from dsa110.settings import Settings
from server.cli import build_parser
from tests.legacy.conftest import SMALL
from tests.legacy.fixture import LegacyFixture
from tests.legacy.writer import PipelineWriter
from tests.live.conftest import TransportWs, running

STATUS = "subscription { pipelineStatus { recentGroups { groupId state presentSubbands } } }"
MEASURED = (
    "subscription($ids: [String!]) { measurementsAdded(filter: {sourceIds: $ids}) "
    "{ image { path } measurements { source { sourceId } peakFluxJy } } }"
)
WAIT_S = 60.0


def _write_one_group(state_dir: Path) -> str:
    """The pipeline's writer, in its own thread (as it would be in its own process)."""
    writer = PipelineWriter(state_dir, SMALL.groups_per_day, out=io.StringIO())
    try:
        return writer.add_group()
    finally:
        writer.close()


def test_serve_takes_the_legacy_directory_to_follow(tmp_path: Path) -> None:
    from server.cli import _settings

    args = build_parser().parse_args(["serve", "--follow-legacy", str(tmp_path), "--legacy-poll", "0.5"])
    settings = _settings(args)
    assert settings.legacy_follow == (tmp_path.resolve(),)
    assert settings.legacy_poll_s == 0.5


async def test_a_subscriber_hears_the_pipeline_through_the_server(
    empty_db_url: str, tmp_path: Path, fresh_fixture: LegacyFixture
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=empty_db_url,
        metrics_interval_s=0,
        legacy_follow=(fresh_fixture.state_dir,),
        legacy_poll_s=0.05,
    )
    async with running(settings) as live:
        follower = live.app.state.legacy_follower
        deadline = time.monotonic() + WAIT_S
        while follower.importer is None or follower.importer.memory["products.photometry"].passes == 0:
            assert time.monotonic() < deadline, "the follower never finished its first pass"
            await asyncio.sleep(0.05)
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe("m", MEASURED, {"ids": fresh_fixture.source_ids})
            await client.subscribe("s", STATUS)
            await client.next_data("s", WAIT_S)  # the snapshot
            # A snapshot is sent before the producer listens: write until a group is heard.
            written: list[str] = []
            heard: str | None = None
            deadline = time.monotonic() + WAIT_S
            while heard is None:
                assert time.monotonic() < deadline, "no written group was ever heard"
                written.append(await asyncio.to_thread(_write_one_group, fresh_fixture.state_dir))
                with contextlib.suppress(TimeoutError):
                    while heard is None:
                        recent = (await client.next_data("s", 3.0))["pipelineStatus"]["recentGroups"]
                        done = [g["groupId"] for g in recent if g["state"] == "COMPLETED"]
                        heard = next((gid for gid in done if gid in written), None)
            measured = (await client.next_data("m", WAIT_S))["measurementsAdded"]
    assert heard in written
    assert any(measured["image"]["path"].endswith(f"{gid}.img.image.pbcor.fits") for gid in written)
    assert measured["measurements"] and all(m["source"]["sourceId"] for m in measured["measurements"])
