"""Two reviewers changing one ESE candidate's status at once: the one that loses the race
is answered ``CONFLICT`` (reload and decide again), as a lost race on a job or a data
product is; ``BAD_USER_INPUT`` stays for a change the lifecycle refuses outright.

The race is made, not hoped for: the winner's change is held uncommitted in its own
connection (holding the write lock on SQLite, the row lock on PostgreSQL) while the loser's
request arrives, reads the candidate and waits for the lock; the winner then commits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.auth.identity import Role
from dsa110.db.engine import create_engine
from dsa110.db.tables import ese_candidates, ese_status_changes
from dsa110.db.writes import write_transaction
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.live.conftest import running, seed

SET_STATUS = """mutation($id: Int!, $status: EseCandidateStatus!) {
  setEseCandidateStatus(candidateId: $id, status: $status) { candidateId status changedBy }
}"""
READ_WAIT_S = 5.0
"""How long the loser's request may take to reach its read of the candidate."""


@contextlib.asynccontextmanager
async def _reads_of_candidates(engine: AsyncEngine) -> AsyncIterator[asyncio.Event]:
    """Set once ``engine`` has run a read of ``ese_candidates`` (the loser judging its change)."""
    done = asyncio.Event()

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "ese_candidates" in statement:
            done.set()

    event.listen(engine.sync_engine, "after_cursor_execute", after)
    try:
        yield done
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", after)


async def _race(url: str, app_engine: AsyncEngine, candidate_pk: int, request: Any) -> Any:
    """Run ``request()`` (the loser) while another writer moves the candidate to ``dismissed``."""
    winner = create_engine(url)
    try:
        async with _reads_of_candidates(app_engine) as loser_read:
            async with write_transaction(winner) as conn:
                await conn.execute(
                    update(ese_candidates)
                    .where(ese_candidates.c.id == candidate_pk)
                    .values(status="dismissed", changed_by="key:winner", updated_at=datetime.now(UTC))
                )
                loser = asyncio.create_task(request())
                # Commit once the loser has judged its change (or after a while if it never
                # reads before taking the lock, which is the old behaviour under test).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(loser_read.wait(), READ_WAIT_S)
            return await loser
    finally:
        await winner.dispose()


async def test_a_status_change_that_loses_a_race_is_a_conflict(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        candidate_pk = (await seed(live.engine))["candidate_pk"]
        operator = await key_headers(live.engine, Role.OPERATOR, "reviewer")

        async def investigate() -> Any:
            variables = {"id": candidate_pk, "status": "INVESTIGATED"}
            return await live.http.post(
                "/graphql", json={"query": SET_STATUS, "variables": variables}, headers=operator
            )

        lost = await _race(live_settings.resolved_database_url, live.engine, candidate_pk, investigate)
        error = lost.json()["errors"][0]
        assert error["extensions"]["code"] == "CONFLICT", lost.text
        assert "now dismissed by key:winner" in error["message"] and "reload" in error["message"]
        async with live.engine.connect() as conn:
            status = (
                await conn.execute(select(ese_candidates.c.status).where(ese_candidates.c.id == candidate_pk))
            ).scalar_one()
            changes = (await conn.execute(select(ese_status_changes.c.to_status))).scalars().all()
        assert (status, changes) == ("dismissed", [])  # the loser wrote nothing

        # Asked of the candidate as it now is, the same change is the caller's error.
        refused = await investigate()
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", refused.text
        assert "from dismissed to investigated" in error["message"]


async def test_an_allowed_change_after_the_race_still_applies(live_settings: Settings) -> None:
    """Without a concurrent writer nothing changes: a valid change applies, a repeated one
    (the status it already has) is refused as input, not as a conflict."""
    async with running(live_settings) as live:
        candidate_pk = (await seed(live.engine))["candidate_pk"]
        operator = await key_headers(live.engine, Role.OPERATOR, "reviewer")
        variables = {"id": candidate_pk, "status": "INVESTIGATED"}
        body = {"query": SET_STATUS, "variables": variables}
        done = (await live.http.post("/graphql", json=body, headers=operator)).json()
        assert done["data"]["setEseCandidateStatus"] == {
            "candidateId": candidate_pk,
            "status": "INVESTIGATED",
            "changedBy": "key:reviewer",
        }
        again = (await live.http.post("/graphql", json=body, headers=operator)).json()
        assert again["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
