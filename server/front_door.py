"""The front door: a thread that accepts connections and reads their first request head.

Why a thread. The server is one event loop per process. Under issue 15's abuse (50
clients reading back to back, two clients holding thousands of half-sent requests, a
probe every 100 ms) that loop runs at 100 % of a core, and everything that needs it
queues: the accept of a new connection, the parsing of its request, the health check.
``/healthz`` went unanswered for 10 s and more, so a load balancer would have taken a
busy but working server out of service. So the work that must not queue is done here,
on a thread of its own, with its own selector; Python's GIL switch interval (5 ms) lets
it run even while the loop is busy:

* it owns ``accept`` on the listening sockets and admits each connection against the
  process's caps (``server.connections``): over a cap, ``503 TOO_MANY_CONNECTIONS`` at once;
* it reads the first request head under the header deadline (``408 REQUEST_TIMEOUT``),
  so half-sent-header floods never reach the event loop at all;
* it answers ``GET /healthz`` itself, from ``server.health`` (the database as last
  watched, the loop's own heartbeat: 503 when the loop has stalled - honest liveness);
* every other connection, with the bytes already read, is handed to the event loop
  (``connect_accepted_socket``), where uvicorn's protocol serves it as if it had
  accepted it: keep-alive, WebSocket upgrades, later requests' header deadline.

Installed as the event loop's ``create_server`` (``new_event_loop``: uvicorn ``--loop
server.front_door:new_event_loop``), so it works wherever uvicorn makes a server: one
process, or each of ``serve --workers N`` (every worker's thread accepts on the shared
socket). TLS servers keep the loop's own ``create_server``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from server import health
from server.connections import (
    REQUEST_TIMEOUT,
    RETRY_AFTER_S,
    TOO_MANY_CONNECTIONS,
    ConnectionSlots,
    http_error,
    process_slots,
)

log = logging.getLogger("dsa110.server.front_door")

TICK_S: Final = 0.1
SWITCH_INTERVAL_S: Final = 0.0005
"""How long a thread holding the GIL runs before another waiting for it gets a turn (CPython: 0.005)."""
"""How often the event loop proves it is alive (``server.health``: silent past ``stall_s`` is a stall)."""
ACCEPT_BATCH: Final = 256
"""Connections accepted per wake-up before the selector is asked again (others get a turn)."""
RECV_BYTES: Final = 65536
MAX_HEAD_BYTES: Final = 65536
"""A head longer than this goes to the event loop undecided (uvicorn's parser limits it)."""
LINGER_S: Final = 1.0
"""How long a refused connection stays half-closed for its 503 to be read (as ``server.http_protocol``)."""
ACCEPT_PAUSE_S: Final = 0.1
"""Out of descriptors (EMFILE): stop accepting this long rather than spin on a ready listener."""
HEALTH_PATH: Final = b"/healthz"


ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class _Head:
    """A connection whose request head is being read."""

    __slots__ = ("answered", "buffer", "deadline", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock: socket.socket | None = sock
        self.buffer = b""
        self.deadline = deadline
        self.answered = False
        """It has had a health answer and is kept alive: silence now is idleness, not a slow head."""


class FrontDoor:
    """Accepts on ``sockets`` in a thread; hands connections to ``loop`` through ``protocol_factory``.

    Also the ``asyncio.Server`` that uvicorn holds: ``close``, ``wait_closed``, ``sockets``.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sockets: list[socket.socket],
        protocol_factory: ProtocolFactory,
        slots: ConnectionSlots,
    ) -> None:
        self.loop = loop
        self.sockets = sockets
        self.protocol_factory = protocol_factory
        self.slots = slots
        self.header_timeout_s = slots.header_timeout_s
        self.selector = selectors.DefaultSelector()
        self.waker, self.wake_end = socket.socketpair()
        self.reading: set[_Head] = set()
        """Connections whose head is being read here (closed with the door)."""
        self.heads: collections.deque[tuple[float, _Head]] = collections.deque()
        """Read deadlines, in order: every head gets the same timeout, so appending keeps them sorted."""
        self.lingering: collections.deque[tuple[float, socket.socket]] = collections.deque()
        self.accept_paused_until = 0.0
        self.loop_tick = time.monotonic()
        self.closing = False
        self.thread = threading.Thread(target=self._run, name="front-door", daemon=True)
        self.tick_handle: asyncio.TimerHandle | None = None
        self.adopting: set[asyncio.Task[None]] = set()
        """Hand-offs the loop is taking (held here: the loop keeps only weak references to tasks)."""

    # -- the asyncio.Server face (what uvicorn uses) ----------------------------------------

    def start(self) -> None:
        for sock in self.sockets:
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, self._accept)
        self.wake_end.setblocking(False)
        self.selector.register(self.wake_end, selectors.EVENT_READ, self._woken)
        self._tick()
        # The door thread does little per event but needs the GIL for each of them; with
        # CPython's 5 ms switch interval a loop busy with Python work hands it over at most
        # every 5 ms, and a flood's thousands of events queue the probe behind them.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.thread.start()

    def close(self) -> None:
        self.closing = True
        if self.tick_handle is not None:
            self.tick_handle.cancel()
        with contextlib.suppress(OSError):
            self.waker.send(b"x")

    async def wait_closed(self) -> None:
        await asyncio.to_thread(self.thread.join)

    def is_serving(self) -> bool:
        return self.thread.is_alive() and not self.closing

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self.loop

    # -- the loop's side ------------------------------------------------------------------

    def _tick(self) -> None:
        # Runs on the event loop: its timestamp is the loop's heartbeat.
        self.loop_tick = time.monotonic()
        if not self.closing:
            self.tick_handle = self.loop.call_later(TICK_S, self._tick)

    def _adopt(self, sock: socket.socket, head: bytes) -> None:
        """On the loop: serve ``sock`` with a new protocol, which first sees ``head`` (read here)."""
        task = self.loop.create_task(self._connect(sock, head))
        self.adopting.add(task)
        task.add_done_callback(self.adopting.discard)

    async def _connect(self, sock: socket.socket, head: bytes) -> None:
        slots = self.slots

        def primed() -> asyncio.BaseProtocol:
            protocol = self.protocol_factory()
            if hasattr(protocol, "admitted_as"):
                protocol.admitted_as = sock  # the slot taken at accept moves to the transport
            else:
                slots.release(sock)  # a protocol that does not count connections
            if head:
                made = protocol.connection_made

                def connection_made(transport: asyncio.BaseTransport) -> None:
                    # The bytes read here come before anything the transport reads next.
                    made(transport)
                    protocol.data_received(head)  # type: ignore[attr-defined]

                protocol.connection_made = connection_made  # type: ignore[method-assign]
            return protocol

        try:
            await self.loop.connect_accepted_socket(primed, sock)
        except (OSError, RuntimeError):
            log.debug("front door: a handed-off connection closed before the loop took it")
            slots.release(sock)
            sock.close()

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self.closing:
                for key, _ in self.selector.select(self._timeout()):
                    try:
                        key.data(key.fileobj)
                    except Exception:  # a bug must cost one connection, never the door
                        log.exception("front door: error on a connection; closing it")
                        self._abandon(key.fileobj)
                self._expire(time.monotonic())
        finally:
            self._teardown()

    def _abandon(self, fileobj: Any) -> None:
        if fileobj is self.wake_end or fileobj in self.sockets:
            return
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.selector.unregister(fileobj)
        self.slots.release(fileobj)
        with contextlib.suppress(OSError):
            fileobj.close()

    def _timeout(self) -> float:
        now = time.monotonic()
        due = [now + 1.0]
        if self.heads:
            due.append(self.heads[0][0])
        if self.lingering:
            due.append(self.lingering[0][0])
        if self.accept_paused_until:
            due.append(self.accept_paused_until)
        return max(0.0, min(due) - now)

    def _woken(self, _: Any) -> None:
        with contextlib.suppress(OSError):
            self.wake_end.recv(64)

    def _accept(self, listener: socket.socket) -> None:
        now = time.monotonic()
        for _ in range(ACCEPT_BATCH):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS: out of something, for a moment
                if self.closing:
                    return  # the listener closed under us at shutdown
                log.warning("front door: accept failed (%s); pausing accepts", exc)
                self._pause_accepting(now)
                return
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = address[0] if isinstance(address, tuple) else ""  # a Unix socket: one shared key
            reason = self.slots.admit(sock, client)
            if reason is not None:
                self._refuse(sock, reason, now)
                continue
            head = _Head(sock, 0.0)
            self.reading.add(head)
            self.selector.register(sock, selectors.EVENT_READ, lambda _, head=head: self._read(head))
            self._arm(head, now)

    def _arm(self, head: _Head, now: float) -> None:
        """Give ``head`` its header deadline (none when the timeout is 0: the setting's "off")."""
        if self.header_timeout_s > 0:
            head.deadline = now + self.header_timeout_s
            self.heads.append((head.deadline, head))

    def _pause_accepting(self, now: float) -> None:
        for sock in self.sockets:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(sock)
        self.accept_paused_until = now + ACCEPT_PAUSE_S

    def _resume_accepting(self) -> None:
        self.accept_paused_until = 0.0
        for sock in self.sockets:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.register(sock, selectors.EVENT_READ, self._accept)

    def _refuse(self, sock: socket.socket, reason: str, now: float) -> None:
        with contextlib.suppress(OSError):
            sock.send(http_error(503, TOO_MANY_CONNECTIONS, reason, retry_after_s=RETRY_AFTER_S))
        if not self.slots.linger():
            sock.close()
            return
        try:
            # The 503, then FIN; input is discarded until the client closes or the linger ends
            # (closing with unread input would reset the connection, maybe before the 503 is read).
            sock.shutdown(socket.SHUT_WR)
            self.selector.register(sock, selectors.EVENT_READ, self._discard)
        except OSError:
            self._end_linger(sock)
            return
        self.lingering.append((now + LINGER_S, sock))

    def _discard(self, sock: socket.socket) -> None:
        try:
            if sock.recv(RECV_BYTES):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._end_linger(sock)

    def _end_linger(self, sock: socket.socket) -> None:
        if sock.fileno() < 0:
            return  # ended already (closed by the client, then its linger came due)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)
        sock.close()
        self.slots.lingered()

    def _read(self, head: _Head) -> None:
        sock = head.sock
        if sock is None:
            return
        try:
            data = sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(head)
            return
        if head.answered:  # a new request on a kept-alive connection: its own header deadline
            head.answered = False
            self._arm(head, time.monotonic())
        head.buffer += data
        self._serve(head)

    def _serve(self, head: _Head) -> None:
        """Answer the complete health probes at the front of ``head``'s bytes; hand off anything else."""
        while (sock := head.sock) is not None:
            end = head.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(head.buffer) > MAX_HEAD_BYTES:
                    self._hand_off(head)
                return
            probe = _health_probe(head.buffer[:end])
            report = health.installed()
            if probe is None or report is None:
                self._hand_off(head)  # not a probe (or no app to report yet): the loop serves it
                return
            method_head, keep_alive = probe
            status, body = report.front_answer(time.monotonic() - self.loop_tick)
            head.buffer = head.buffer[end + 4 :]
            if not _send_all(sock, _response(status, body, keep_alive, method_head)) or not keep_alive:
                self._drop(head)
                return
            head.answered = not head.buffer
            self._arm(head, time.monotonic())

    def _hand_off(self, head: _Head) -> None:
        sock = head.sock
        assert sock is not None
        head.sock = None
        self.reading.discard(head)
        self.selector.unregister(sock)
        try:
            self.loop.call_soon_threadsafe(self._adopt, sock, head.buffer)
        except RuntimeError:  # the loop has closed
            self.slots.release(sock)
            sock.close()

    def _drop(self, head: _Head) -> None:
        sock = head.sock
        if sock is None:
            return
        head.sock = None
        self.reading.discard(head)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)
        self.slots.release(sock)
        sock.close()

    def _expire(self, now: float) -> None:
        heads = self.heads
        while heads and heads[0][0] <= now:
            deadline, head = heads.popleft()
            if head.sock is None or head.deadline != deadline:
                continue  # handed off, closed, or given a later deadline since
            if not head.answered:
                self.slots.note_timeout()
                message = f"request headers not complete within {self.header_timeout_s:g} s"
                _send_all(head.sock, http_error(408, REQUEST_TIMEOUT, message))
            self._drop(head)  # an idle kept-alive probe connection just closes
        while self.lingering and self.lingering[0][0] <= now:
            self._end_linger(self.lingering.popleft()[1])
        if self.accept_paused_until and now >= self.accept_paused_until:
            self._resume_accepting()

    def _teardown(self) -> None:
        for head in list(self.reading):
            self._drop(head)
        for _, sock in self.lingering:
            self._end_linger(sock)
        for sock in self.sockets:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(sock)
            sock.close()
        self.selector.close()
        self.waker.close()
        self.wake_end.close()


def _health_probe(head: bytes) -> tuple[bool, bool] | None:
    """(HEAD?, keep alive?) if ``head`` is a bodiless ``GET``/``HEAD /healthz``; else None."""
    line, _, rest = head.partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or parts[0] not in (b"GET", b"HEAD"):
        return None
    target, version = parts[1], parts[2]
    if target.partition(b"?")[0] != HEALTH_PATH or version not in (b"HTTP/1.1", b"HTTP/1.0"):
        return None
    connection = b""
    for field in rest.split(b"\r\n"):
        name, _, value = field.partition(b":")
        name = name.strip().lower()
        if name in (b"content-length", b"transfer-encoding", b"upgrade", b"origin"):
            if name != b"content-length" or value.strip() != b"0":
                # A body or an upgrade: the app decides what that means; a browser's
                # cross-origin call: the app's CORS policy answers it.
                return None
        elif name == b"connection":
            connection = value.strip().lower()
    keep_alive = b"close" not in connection if version == b"HTTP/1.1" else b"keep-alive" in connection
    return parts[0] == b"HEAD", keep_alive


def _response(status: int, body: dict[str, Any], keep_alive: bool, head_only: bool) -> bytes:
    payload = json.dumps(body).encode()
    reason = {200: "OK", 503: "Service Unavailable"}.get(status, "")
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(payload)}",
        "cache-control: no-store",
        "connection: keep-alive" if keep_alive else "connection: close",
    ]
    if status == 503:
        lines.append(f"retry-after: {RETRY_AFTER_S}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head_only else payload)


def _send_all(sock: socket.socket, data: bytes) -> bool:
    """Write ``data`` now, or not at all: a probe's answer fits an empty socket buffer; a
    client that leaves its buffer full is not waited for."""
    try:
        return sock.send(data) == len(data)
    except OSError:
        return False


# -- the event loop that has one ----------------------------------------------------------


def _listening_sockets(host: str | None, port: int, backlog: int) -> list[socket.socket]:
    """Bound, listening sockets for ``host:port`` (as ``loop.create_server(host=, port=)`` makes)."""
    made: list[socket.socket] = []
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    for family, kind, proto, _, address in dict.fromkeys(infos):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
        except OSError:
            sock.close()
            for other in made:
                other.close()
            raise
        made.append(sock)
    return made


class FrontDoorLoopMixin:
    """An event loop whose ``create_server`` puts a ``FrontDoor`` in front of the protocol."""

    async def create_server(  # type: ignore[no-untyped-def]
        self, protocol_factory, host=None, port=None, *, sock=None, backlog=100, ssl=None, **kwargs
    ):
        if ssl is not None or kwargs.get("start_serving") is False or kwargs.get("family") == socket.AF_UNIX:
            return await super().create_server(  # type: ignore[misc]
                protocol_factory, host, port, sock=sock, backlog=backlog, ssl=ssl, **kwargs
            )
        if sock is not None:
            sock.listen(backlog)  # already listening (a supervisor's): this sets the queue length
            sockets = [sock]
        else:
            sockets = _listening_sockets(host, port, backlog)
        door = FrontDoor(self, sockets, protocol_factory, process_slots())  # type: ignore[arg-type]
        door.start()
        return door


class FrontDoorSelectorLoop(FrontDoorLoopMixin, asyncio.SelectorEventLoop):
    pass


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvicorn's loop factory (``--loop server.front_door:new_event_loop``): uvloop if installed,
    as uvicorn's default ``auto`` would choose."""
    try:
        import uvloop
    except ImportError:
        return FrontDoorSelectorLoop()

    class FrontDoorUvLoop(FrontDoorLoopMixin, uvloop.Loop):  # type: ignore[misc]
        pass

    return FrontDoorUvLoop()
