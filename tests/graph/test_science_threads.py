"""A slow science field does not hold up other clients: it runs off the event loop.

The fit is made to wait (in whatever thread runs it) until the test has received the
answer to another client's simple query. On the event loop that wait would stall the
loop, the simple query could not be answered, and the fit would give up; off the loop
the simple query is answered first, then the fit completes.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from dsa110.science import fitting

BRIGHT = """{ sources(first: 1, orderBy: MEAN_FLUX, direction: DESC) {
  nodes { raDeg decDeg measurements(first: 1) { nodes { image { imageId } } } } } }"""
FIT = """query($i: Int!, $ra: Float!, $dec: Float!) { image(imageId: $i) {
  fit(raDeg: $ra, decDeg: $dec, boxArcsec: 1200) { peak } } }"""
SIMPLE = "{ sources(first: 2) { nodes { sourceId } } }"
GIVE_UP_S = 30.0


async def test_a_slow_fit_does_not_delay_another_clients_query(
    image_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = await image_client.post("/graphql", json={"query": BRIGHT})
    source = found.json()["data"]["sources"]["nodes"][0]
    at = {
        "i": source["measurements"]["nodes"][0]["image"]["imageId"],
        "ra": source["raDeg"],
        "dec": source["decDeg"],
    }
    answered = threading.Event()  # the other client has its answer
    fitting_started = threading.Event()
    real_fit = fitting.fit_source_2d
    events: list[str] = []

    def slow_fit(*args: Any, **kwargs: Any) -> Any:
        fitting_started.set()
        if not answered.wait(GIVE_UP_S):
            events.append("fit gave up waiting")
            raise RuntimeError("the other client was never answered while the fit ran")
        events.append("fit ran")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(fitting, "fit_source_2d", slow_fit)
    fit = asyncio.create_task(image_client.post("/graphql", json={"query": FIT, "variables": at}))
    await asyncio.get_running_loop().run_in_executor(None, fitting_started.wait, GIVE_UP_S)

    simple = await image_client.post("/graphql", json={"query": SIMPLE})
    events.append("simple answered")
    assert not fit.done()  # the fit is still running, in its thread
    answered.set()
    fitted = await fit

    assert simple.json()["data"]["sources"]["nodes"]
    assert events == ["simple answered", "fit ran"]
    assert fitted.json()["data"]["image"]["fit"]["peak"] > 0
