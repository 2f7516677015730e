"""A deadline per HTTP request, and an end to the work when the client goes away.

Every HTTP request (except event streams, which are meant to last: the legacy status channel
and a job's log, and ``/graphql`` asked for as ``text/event-stream``) runs inside a
``dsa110.db.work.Work``. The work is stopped (its SQL interrupted or cancelled, its
tasks cancelled, nothing more started: see that module) and the request's task is
cancelled when

* ``Settings.request_deadline_s`` passes before the answer has started: the client
  gets 504 ``DEADLINE_EXCEEDED`` (a GraphQL error body, or the ``/api`` envelope), or,
  when its own body has not all arrived by then (a client trickling or stalling it),
  408 ``REQUEST_TIMEOUT`` and the connection closes: the delay was the client's;
* the client disconnects, whenever that happens: nobody is left to answer.

A query or mutation over a WebSocket (graphql-transport-ws ``subscribe`` with a single-result
document) gets the same deadline through ``within_deadline``: its work is stopped the same
way and the client gets an ``error`` message for that operation, code ``DEADLINE_EXCEEDED``;
the connection stays open. A query or mutation over GraphQL-over-SSE (``Accept:
text/event-stream``, which this middleware lets through as a stream) gets it through
``within_deadline`` too (``server.graphql_view.results_within_deadline``): stopped, its
stream carries one result with the error ``DEADLINE_EXCEEDED``, then ends. Subscriptions
(over either transport) and the legacy ``/api/sse/status`` channel are streams, meant to
last: no deadline. The legacy graphql-ws protocol carries subscriptions only (a query or
mutation there is refused for its id before it executes), so it has no operation for a
deadline to stop.

Disconnection is only visible by reading the ASGI ``receive`` channel, which the app
may not do again once it has the body; so this middleware is the one reader of the
channel: a watcher task forwards the request's messages to the app and notices the
``http.disconnect``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dsa110.db.work import CANCELLED, Work, run_within, running
from server.event_streams import EventStreamPaths
from server.trust import refusal_body

log = logging.getLogger("dsa110.server")

DEADLINE_EXCEEDED: Final = "DEADLINE_EXCEEDED"
DEADLINE_STATUS: Final = 504
REQUEST_TIMEOUT: Final = "REQUEST_TIMEOUT"


class DeadlineMiddleware:
    """``streams``: the event streams, meant to last, that get no deadline
    (``server.event_streams``: the header alone does not make a stream)."""

    def __init__(self, app: ASGIApp, deadline_s: float, streams: EventStreamPaths | None = None) -> None:
        self.app = app
        self.deadline_s = deadline_s
        self.streams = streams or EventStreamPaths()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.streams.match(scope):
            await self.app(scope, receive, send)
            return
        await _Request(self, scope, receive, send).run()


class _Request:
    """One request: the app's task, its deadline, the watcher of the client."""

    def __init__(self, owner: DeadlineMiddleware, scope: Scope, receive: Receive, send: Send) -> None:
        self.owner = owner
        self.scope = scope
        self.receive = receive
        self.send = send
        self.inbox: asyncio.Queue[Message | BaseException] = asyncio.Queue()
        self.work = Work()
        self.started = False  # the answer's first message has gone out
        self.answered = False  # ... and its last
        self.body_received = False  # the request's last body message has come in
        self.outcome: str | None = None  # "deadline" | "disconnect"
        self.task: asyncio.Task[Any] | None = None
        self.stopping: asyncio.Future[None] | None = None  # ending the SQL (held: not collected early)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline_s = self.owner.deadline_s
        # The app runs in a task of its own, so that stopping it never cancels this one:
        # this one answers the deadline, and passes on a cancellation from outside.
        self.task = app = asyncio.create_task(self._run_app())
        timer = loop.call_later(deadline_s, self._on_deadline) if deadline_s > 0 else None
        watcher = asyncio.create_task(self._watch_client())
        try:
            await asyncio.wait({app})
        except asyncio.CancelledError:
            app.cancel()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            watcher.cancel()
        if not app.cancelled():
            app.result()  # the app's own exception, if any, goes on up
        elif self.outcome == "deadline" and not self.started:
            await self._answer_deadline()

    async def _run_app(self) -> None:
        with running(self.work):
            await self.owner.app(self.scope, self._receive, self._send)

    # -- the client side ------------------------------------------------------------------

    async def _watch_client(self) -> None:
        while True:
            try:
                message = await self.receive()
            except Exception as exc:  # e.g. BodyTooLarge: the app's receive must raise it
                self.inbox.put_nowait(exc)
                return
            self.inbox.put_nowait(message)
            if message["type"] == "http.request" and not message.get("more_body", False):
                self.body_received = True
            if message["type"] == "http.disconnect":
                if not self.answered:
                    self._end("disconnect", "the client went away")
                return

    async def _receive(self) -> Message:
        message = await self.inbox.get()
        if isinstance(message, BaseException):
            raise message
        if message["type"] == "http.disconnect":
            self.inbox.put_nowait(message)  # every later read sees it too
        return message

    async def _send(self, message: Message) -> None:
        if self.outcome is not None and not self.started:
            # Stopped: the app may still finish (its SQL failed under it) before its
            # cancellation lands; the answer is the deadline's, or none.
            raise asyncio.CancelledError
        if message["type"] == "http.response.start":
            self.started = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.answered = True  # a disconnect from now on is the end of the exchange, not an abort
        await self.send(message)

    # -- ending the work ------------------------------------------------------------------

    def _on_deadline(self) -> None:
        if not self.started:
            self._end("deadline", f"the request took longer than its {self.owner.deadline_s:g} s deadline")

    def _end(self, outcome: str, reason: str) -> None:
        if self.outcome is not None or self.task is None or self.task.done():
            return
        self.outcome = outcome
        code = DEADLINE_EXCEEDED if outcome == "deadline" else CANCELLED
        self.stopping = asyncio.ensure_future(self.work.stop(reason, code))
        self.task.cancel()

    async def _answer_deadline(self) -> None:
        deadline_s = self.owner.deadline_s
        headers = [(b"content-type", b"application/json")]
        if self.body_received:
            status, code = DEADLINE_STATUS, DEADLINE_EXCEEDED
            message = f"the request took longer than its {deadline_s:g} s deadline and was stopped"
        else:  # the client's delay, not ours; the rest of its body may still come: close
            status, code = 408, REQUEST_TIMEOUT
            message = f"the request body was not all received within the {deadline_s:g} s deadline"
            headers.append((b"connection", b"close"))
        body = refusal_body(self.scope["path"], code, message)
        headers.append((b"content-length", str(len(body)).encode()))
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})
        log.warning("deadline: %s %s stopped", self.scope.get("method"), self.scope["path"][:200])


async def within_deadline(deadline_s: float, operation: Coroutine[Any, Any, None], reason: str) -> bool:
    """Run ``operation`` as a ``Work`` of its own, stopped when ``deadline_s`` passes (0: never).

    True if it ended by itself; False if the deadline stopped it (its SQL interrupted or
    cancelled, its task cancelled and awaited): the caller answers for it. As for an HTTP
    request, the operation runs in a task of its own, so that the deadline never cancels
    the caller's; a cancellation of the caller's (the client ended the operation, or went
    away) stops the work and is passed on to it (``dsa110.db.work.run_within``).
    """
    task, stopped = await run_within(
        deadline_s if deadline_s > 0 else None,
        operation,
        reason,
        ended="the operation was ended by its client",
    )
    if stopped and task.cancelled():
        return False
    task.result()  # the operation's own exception, if any, goes on up
    return True
