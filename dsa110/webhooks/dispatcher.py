"""The delivery loop: find events, enqueue them, claim due rows, POST them signed, record.

One loop per server process; processes share the work through the outbox's claims, so
running several is safe and a dead one's claims expire into someone else's hands. The
loop wakes every ``poll_s`` seconds, and at once when the bus says a candidate or a job
changed (``ese.candidate``, ``job.state``), so a new candidate is announced within about
a second of its commit. Every attempt is bounded by ``timeout_s``; the claim lease is
three times that, so a slow receiver is never delivered to twice by two processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110 import telemetry
from dsa110.events.channels import ESE_CANDIDATE, JOB_STATE, WEBHOOK_OUTBOX
from dsa110.webhooks.formats import render
from dsa110.webhooks.outbox import Claimed, backoff, claim_due, enqueue, record_attempt, subscriptions
from dsa110.webhooks.signing import signed_headers
from dsa110.webhooks.sources import find_events
from dsa110.webhooks.targets import Allowlist, BadWebhookUrl, parse_target, resolve_allowed

log = logging.getLogger("dsa110.webhooks")

WAKE_CHANNELS: Final = (ESE_CANDIDATE, JOB_STATE, WEBHOOK_OUTBOX)
"""Events that may mean something to deliver: a candidate or job changed, a test was asked for."""
OUTBOX_CHANNEL: Final = WEBHOOK_OUTBOX
MAX_RESPONSE_BYTES: Final = 4096
CONCURRENCY: Final = 4
USER_AGENT: Final = "dsa110-graph-webhooks/1"


@dataclass(frozen=True)
class DispatchSettings:
    poll_s: float = 5.0
    timeout_s: float = 10.0
    max_attempts: int = 12
    retry_base_s: float = 10.0
    retry_cap_s: float = 3600.0
    stale_streaming: timedelta | None = timedelta(minutes=30)
    public_url: str | None = None
    """This server's address as receivers reach it (links in messages); None: no links."""


async def post(
    claimed: Claimed, allow: Allowlist, timeout_s: float, client: httpx.AsyncClient
) -> tuple[bool, int | None, str | None]:
    """One signed POST of a claimed row: (delivered, HTTP status, error)."""
    try:
        target = parse_target(claimed.url)
        address = await resolve_allowed(target, allow)
    except BadWebhookUrl as refused:
        return False, None, f"refused: {refused.message}"
    payload = claimed.payload
    body = render(
        claimed.format, claimed.event_kind, claimed.event_key, payload["occurred_at"], payload["data"]
    )
    headers = {
        **signed_headers(claimed.secret, claimed.event_key, int(time.time()), body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "x-dsa110-event": claimed.event_kind,
    }
    # Connect to the address that was checked; the name goes in Host and in TLS SNI.
    url = httpx.URL(claimed.url)
    host = f"[{address}]" if address.version == 6 else str(address)
    headers["host"] = url.netloc.decode("ascii")
    request = client.build_request(
        "POST",
        url.copy_with(host=host),
        content=body,
        headers=headers,
        extensions={"sni_hostname": target.host, "timeout": httpx.Timeout(timeout_s).as_dict()},
    )
    try:
        response = await client.send(request, stream=True)
        try:
            await _drain(response)
        finally:
            await response.aclose()
    except httpx.HTTPError as exc:
        return False, None, without_secret_parts(f"{type(exc).__name__}: {exc}", claimed.url)[:500]
    if 200 <= response.status_code < 300:
        return True, response.status_code, None
    return False, response.status_code, f"HTTP {response.status_code}"


def without_secret_parts(text: str, url: str) -> str:
    """``text`` (an error about a delivery) without the URL's path and query: they are often
    the secret (a Slack hook's token), and the error is stored, shown and logged.

    Both forms are taken out: the URL as written and as httpx sends and quotes it (a
    non-ASCII or space-holding path is percent-encoded in httpx's messages)."""
    try:
        parts = urlsplit(url)
        secret = [parts.path + (f"?{parts.query}" if parts.query else ""), parts.query, parts.path]
    except ValueError:  # not a URL urllib reads (stored before validation): all of it goes
        secret = [url, url.partition("://")[2]]
    try:
        sent = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        sent = None
    if sent is not None:
        raw = sent.raw_path.decode("ascii", "replace")
        secret += [raw, *raw.split("?", 1), sent.query.decode("ascii", "replace"), sent.path]
    for part in sorted({p for p in secret if len(p) > 1}, key=len, reverse=True):
        text = text.replace(part, "/[redacted]" if part.startswith("/") else "[redacted]")
    return text


async def _drain(response: httpx.Response) -> None:
    """Read at most a few kB of the answer: a receiver cannot make us hold a large body."""
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received >= MAX_RESPONSE_BYTES:
            break


class Dispatcher:
    def __init__(self, engine: AsyncEngine, bus: Any, settings: DispatchSettings, allow: Allowlist) -> None:
        self.engine = engine
        self.bus = bus
        self.settings = settings
        self.allow = allow
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=3 * self.settings.timeout_s)

    async def open(self) -> None:
        """Ready to deliver (``run_once``) without the background loop."""
        # No redirects (a 3xx could point anywhere), no proxies from the environment.
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)

    async def start(self) -> None:
        await self.open()
        self._tasks = [asyncio.create_task(self._loop(), name="webhook-dispatcher")]
        if self.bus is not None:
            self._tasks.append(asyncio.create_task(self._listen(), name="webhook-wake"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()

    async def _listen(self) -> None:
        while True:
            try:
                async with self.bus.subscribe(*WAKE_CHANNELS) as events:
                    async for _ in events:
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("webhooks: bus subscription lost; polling only", exc_info=True)
                await asyncio.sleep(self.settings.poll_s)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhooks: a dispatch round failed; retrying")
            # asyncio.timeout, not wait_for: the wait stays in this task (wait_for would
            # spawn one per round, which a task census mistakes for a leak).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_s):
                    await self._wake.wait()
            self._wake.clear()

    async def run_once(self) -> int:
        """One round: enqueue new events, deliver what is due. Returns the attempts made."""
        subscribers = await subscriptions(self.engine, enabled_only=True)
        if subscribers:  # nobody listening: leave the tables alone
            oldest = min(s["created_at"] for s in subscribers)
            events = await find_events(
                self.engine, self.settings.stale_streaming, self.settings.public_url, oldest
            )
            if events:
                await enqueue(self.engine, events, subscribers)
        claimed = await claim_due(self.engine, self.holder, self.lease)
        gate = asyncio.Semaphore(CONCURRENCY)
        await asyncio.gather(*(self._attempt(c, gate) for c in claimed))
        return len(claimed)

    async def _attempt(self, claimed: Claimed, gate: asyncio.Semaphore) -> None:
        assert self._client is not None
        async with gate:
            start = time.perf_counter()
            delivered, status, error = await post(claimed, self.allow, self.settings.timeout_s, self._client)
            elapsed = time.perf_counter() - start
            telemetry.WEBHOOK_LATENCY.observe(elapsed)
            s = self.settings
            outcome = await record_attempt(
                self.engine,
                claimed,
                holder=self.holder,
                delivered=delivered,
                status_code=status,
                error=error,
                duration_ms=elapsed * 1000.0,
                max_attempts=s.max_attempts,
                retry_in_s=backoff(claimed.attempts + 1, s.retry_base_s, s.retry_cap_s),
            )
            telemetry.WEBHOOK_DELIVERIES.labels(outcome).inc()
            if not delivered:
                log.info(
                    "webhook %s to subscription %s: %s (%s)",
                    claimed.event_key,
                    claimed.subscription_pk,
                    outcome,
                    error,
                )
