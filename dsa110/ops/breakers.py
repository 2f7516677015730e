"""Circuit breakers for the dependencies the server calls: external catalogs, the bus, the database.

A breaker counts consecutive failures of calls to one dependency. ``threshold`` failures
in a row open it: for ``recovery_timeout_s`` calls are refused at once (``BreakerOpen``)
instead of each waiting out a timeout; then one trial call is let through (half-open) and
its outcome closes the breaker or opens it again. This is the usual pattern (Nygard,
*Release It!*); the legacy server kept such breakers in process too (legacy-pipeline-facts
§2.3), and so does this one: state is per server process.

``guarding=False`` breakers only watch: the database and the event bus are not refused
(a write that cannot reach the database fails on its own, with ``BUSY`` or an error, and
nothing would be gained by refusing it sooner); their state says whether recent calls
failed. ``reset`` closes a breaker by hand (an operator's call).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from dsa110.errors import UnavailableError

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class BreakerOpen(UnavailableError):
    code = "CIRCUIT_OPEN"


@dataclass(frozen=True)
class BreakerState:
    name: str
    kind: str
    state: str
    failure_count: int
    threshold: int
    recovery_timeout_s: float
    last_failure_at: datetime | None
    last_error: str | None
    last_success_at: datetime | None
    calls: int
    failures: int
    refused: int
    guarding: bool


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        kind: str,
        *,
        threshold: int = 5,
        recovery_timeout_s: float = 60.0,
        guarding: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.kind = name, kind
        self.threshold, self.recovery_timeout_s, self.guarding = threshold, recovery_timeout_s, guarding
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial = False
        self._last_failure: datetime | None = None
        self._last_error: str | None = None
        self._last_success: datetime | None = None
        self.calls = self.failures = self.refused = 0

    def _state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        return HALF_OPEN if self._clock() - self._opened_at >= self.recovery_timeout_s else OPEN

    def before_call(self) -> None:
        """Raise ``BreakerOpen`` if a guarding breaker refuses the call now."""
        with self._lock:
            self.calls += 1
            if not self.guarding:
                return
            state = self._state()
            if state == OPEN or (state == HALF_OPEN and self._trial):
                self.refused += 1
                wait = max(0.0, self.recovery_timeout_s - (self._clock() - (self._opened_at or 0.0)))
                raise BreakerOpen(
                    f"{self.name} failed {self._consecutive} times in a row; calls are paused "
                    f"for another {wait:.0f} s",
                    breaker=self.name,
                )
            if state == HALF_OPEN:
                self._trial = True

    def success(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._opened_at = None
            self._trial = False
            self._last_success = datetime.now(UTC)

    def failure(self, error: BaseException | str) -> None:
        with self._lock:
            self.failures += 1
            self._consecutive += 1
            self._trial = False
            self._last_failure = datetime.now(UTC)
            self._last_error = str(error)[:500]
            if self._consecutive >= self.threshold:
                self._opened_at = self._clock()

    def reset(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._opened_at = None
            self._trial = False

    def snapshot(self) -> BreakerState:
        with self._lock:
            return BreakerState(
                name=self.name,
                kind=self.kind,
                state=self._state(),
                failure_count=self._consecutive,
                threshold=self.threshold,
                recovery_timeout_s=self.recovery_timeout_s,
                last_failure_at=self._last_failure,
                last_error=self._last_error,
                last_success_at=self._last_success,
                calls=self.calls,
                failures=self.failures,
                refused=self.refused,
                guarding=self.guarding,
            )


DATABASE: Final = CircuitBreaker("database", "database", threshold=5, recovery_timeout_s=30.0, guarding=False)
EVENT_BUS: Final = CircuitBreaker(
    "event_bus", "event_bus", threshold=3, recovery_timeout_s=30.0, guarding=False
)
EXTERNAL: Final[dict[str, CircuitBreaker]] = {
    service: CircuitBreaker(f"external_{service}", "external_catalog", threshold=3, recovery_timeout_s=300.0)
    for service in ("simbad", "ned", "gaia")
}


def all_breakers() -> list[CircuitBreaker]:
    return [DATABASE, EVENT_BUS, *EXTERNAL.values()]


def find(name: str) -> CircuitBreaker | None:
    return next((b for b in all_breakers() if b.name == name), None)
