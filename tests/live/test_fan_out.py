"""Fan-out of one shared result: written directly to clients that can take it, queued otherwise.

The producer side only (``server.live_transport.fanout.fan_out``); the routes here record what they
are given, as a transport's would write it. The real socket route is tested in
test_direct_send.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from server.live_transport.fanout import DirectRoute, SharedResult, Subscriber, fan_out


@dataclass
class RecordingClient:
    """A client's end of a direct route: accepts writes while ``open``."""

    op_id: str
    open: bool = True
    received: list[bytes] = field(default_factory=list)
    encodings: list[str] = field(default_factory=list)

    def route(self) -> DirectRoute:
        def encode(result: SharedResult) -> bytes:
            self.encodings.append(self.op_id)
            return f"{self.op_id}:{result.data}".encode()

        def write(frame: bytes) -> bool:
            if self.open:
                self.received.append(frame)
            return self.open

        return DirectRoute(self.op_id, encode, write)


def live_subscriber(client: RecordingClient | None) -> Subscriber:
    subscriber = Subscriber()
    if client is not None:
        subscriber.direct = client.route()
    subscriber.live = True
    return subscriber


def result(n: int) -> SharedResult:
    return SharedResult(data={"n": n}, errors=None)


async def drain(subscriber: Subscriber) -> list[SharedResult]:
    """What the subscriber's own task would send: every queued item, until it would wait."""
    taken: list[SharedResult] = []
    items = subscriber.items()
    try:
        while True:
            async with asyncio.timeout(0.05):
                item = await anext(items)
            assert isinstance(item, SharedResult)
            taken.append(item)
    except TimeoutError:
        return taken
    finally:
        await items.aclose()


def test_open_clients_are_written_directly_and_nothing_is_queued() -> None:
    clients = [RecordingClient("a"), RecordingClient("b")]
    subscribers = [live_subscriber(c) for c in clients]

    assert fan_out(result(1), subscribers) == 0
    assert clients[0].received == [b"a:{'n': 1}"]
    assert clients[1].received == [b"b:{'n': 1}"]
    assert all(s.idle for s in subscribers)


def test_clients_with_the_same_key_share_one_encoding() -> None:
    same = [RecordingClient("1") for _ in range(5)]
    other = RecordingClient("2")
    fan_out(result(7), [live_subscriber(c) for c in [*same, other]])

    assert sum(len(c.encodings) for c in same) == 1
    assert other.encodings == ["2"]
    assert all(c.received == [b"1:{'n': 7}"] for c in same)


def test_a_client_without_a_route_or_before_its_snapshot_is_queued() -> None:
    plain = live_subscriber(None)
    joining = live_subscriber(RecordingClient("j"))
    joining.live = False  # its snapshot has not gone out yet

    assert fan_out(result(1), [plain, joining]) == 2
    assert not plain.idle and not joining.idle


async def test_a_refusing_client_gets_results_queued_in_order_until_it_catches_up() -> None:
    client = RecordingClient("slow")
    subscriber = live_subscriber(client)
    fan_out(result(1), [subscriber])
    client.open = False  # back-pressure: the socket will not take more now
    fan_out(result(2), [subscriber])
    client.open = True
    # The socket could take #3, but #2 is still queued: writing #3 now would overtake it.
    assert fan_out(result(3), [subscriber]) == 1
    assert client.received == [b"slow:{'n': 1}"]

    queued = await drain(subscriber)
    assert [r.data for r in queued] == [{"n": 2}, {"n": 3}]
    assert subscriber.idle
    # Caught up: the direct route is used again.
    assert fan_out(result(4), [subscriber]) == 0
    assert client.received[-1] == b"slow:{'n': 4}"


async def test_an_item_being_sent_by_the_client_task_is_not_overtaken() -> None:
    client = RecordingClient("c")
    subscriber = live_subscriber(client)
    subscriber.push(result(1))
    items = subscriber.items()
    first = await anext(items)  # the client's task holds #1 (sending it), the queue is empty
    assert first.data == {"n": 1}  # type: ignore[attr-defined]
    assert not subscriber.idle
    assert fan_out(result(2), [subscriber]) == 1
    assert client.received == []
    await items.aclose()


def test_a_write_that_raises_falls_back_to_the_queue() -> None:
    def broken(_: bytes) -> bool:
        raise OSError("transport gone")

    subscriber = Subscriber()
    subscriber.direct = DirectRoute("k", lambda r: b"x", broken)
    subscriber.live = True
    assert fan_out(result(1), [subscriber]) == 1
    assert not subscriber.idle
