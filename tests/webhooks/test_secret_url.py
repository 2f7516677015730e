"""A webhook URL's path is often its secret (a Slack hook's token): a failed delivery's error,
stored in the delivery log, shown by ``webhookDeliveries`` and logged, must not carry it."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.webhooks.dispatcher import without_secret_parts
from dsa110.webhooks.outbox import create_subscription, deliveries
from tests.live.servers import free_port
from tests.webhooks.test_delivery import LOCAL, alert, dispatcher

TOKEN = "SECRETTOKEN123"


async def _subscribe(engine: AsyncEngine, url: str) -> None:
    await create_subscription(
        engine,
        name="slack",
        url=url,
        event_kinds=["ese_candidate"],
        min_significance=None,
        fmt="slack",
        created_by="key:test",
        allow=LOCAL,
    )


def _refuse(request: httpx.Request) -> httpx.Response:
    # What a transport error may say: the request's URL, path and query included.
    raise httpx.ConnectError(f"could not reach {request.url}", request=request)


@pytest.mark.parametrize("refusing", [False, True], ids=["nobody-listening", "error-quoting-the-url"])
async def test_a_failed_delivery_does_not_reveal_the_url_path(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture, refusing: bool
) -> None:
    caplog.set_level(logging.DEBUG, logger="dsa110")
    await _subscribe(engine, f"http://127.0.0.1:{free_port()}/services/T000/B000/{TOKEN}?key={TOKEN}x")
    await alert(engine, 7.0)
    d = await dispatcher(engine, timeout_s=2.0)
    if refusing:
        assert d._client is not None
        await d._client.aclose()
        d._client = httpx.AsyncClient(transport=httpx.MockTransport(_refuse))
    try:
        await d.run_once()
    finally:
        await d.stop()
    (row,) = await deliveries(engine, None, None, 10)
    assert row["state"] == "pending" and row["attempts"] == 1 and row["last_error"]
    assert row["last_error"].startswith("ConnectError")
    errors = [row["last_error"], *(a["error"] for a in row["attempt_log"])]
    assert not [e for e in errors if TOKEN in e or "/services/" in e], errors
    if refusing:
        assert "/[redacted]" in row["last_error"] and "127.0.0.1" in row["last_error"]
    assert "webhook" in caplog.text and TOKEN not in caplog.text  # the failure is logged, not the path


def test_the_path_and_query_are_taken_out_by_hand() -> None:
    url = f"https://hooks.slack.com/services/T000/B000/{TOKEN}?a=1"
    said = f"ReadTimeout: {url} and https://1.2.3.4/services/T000/B000/{TOKEN}?a=1 (a=1)"
    assert without_secret_parts(said, url) == (
        "ReadTimeout: https://hooks.slack.com/[redacted] and https://1.2.3.4/[redacted] ([redacted])"
    )
    assert without_secret_parts("HTTP 500", "https://example.org/") == "HTTP 500"


@pytest.mark.parametrize(
    "path",
    ["/services/T000/B000/tökén-SECRET", "/services/T000/B000/a%20SECRET%2Fb", "/hooks/SECRET with space"],
    ids=["non-ascii", "percent-encoded", "space"],
)
def test_the_path_is_taken_out_as_httpx_quotes_it(path: str) -> None:
    """httpx's messages quote the URL it sent (percent-encoded), not the one written."""
    url = f"https://hooks.example.org{path}?token=ünïcode-SECRET"
    sent = httpx.URL(url)
    said = f"ConnectError: could not reach {sent} ({sent.raw_path.decode()})"
    kept = without_secret_parts(said, url)
    assert "SECRET" not in kept and "services" not in kept and "hooks/" not in kept, kept
    assert kept.startswith("ConnectError: could not reach https://hooks.example.org/[redacted]"), kept
    assert (
        without_secret_parts(f"ReadTimeout: {url}", url)
        == "ReadTimeout: https://hooks.example.org/[redacted]"
    )


def test_a_url_httpx_cannot_read_is_still_taken_out_as_written() -> None:
    url = "https://[not-a-host/services/SECRET"
    assert "SECRET" not in without_secret_parts(f"InvalidURL: {url}", url)
