"""A separate OS process that publishes through the bus (run by test_two_processes).

Usage: python -m tests.events.publisher_process URL NAMESPACE CHANNEL COUNT
Prints the bus origin, then publishes COUNT events {"seq": i, "pid": <this pid>}.
"""

from __future__ import annotations

import asyncio
import os
import sys

from dsa110.events import create_event_bus


async def publish(url: str, namespace: str, channel: str, count: int) -> None:
    bus = create_event_bus(url, namespace=namespace)
    await bus.start()
    try:
        print(bus.origin, flush=True)
        for seq in range(count):
            await bus.publish(channel, {"seq": seq, "pid": os.getpid()})
    finally:
        await bus.close()


if __name__ == "__main__":
    url, namespace, channel, count = sys.argv[1:5]
    asyncio.run(publish(url, namespace, channel, int(count)))
