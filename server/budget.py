"""The per-minute request budget, charged once a request is let in to run.

``server.trust`` names the caller and marks what is to be charged (``BUDGET_DUE``: every
request and handshake except the open paths); this middleware charges it, inside the
per-client limit (``server.concurrency``). A request it refuses did no work and costs
nothing of the budget: a client retrying after ``TOO_MANY_CONCURRENT_REQUESTS`` does not
lock itself out for the rest of the minute. Refusals stay cheap (no SQL, no body
parsed), which is what flood protection needs from them; the budget still bounds the work
a client starts. The counters are the limiter's (``dsa110.auth.ratelimit``: in-process, or
shared through Redis), so the processes that share one keep sharing it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from dsa110.auth.identity import identity_in
from dsa110.auth.ratelimit import RateLimiter
from dsa110.settings import Settings
from server.trust import BUDGET_DUE, Refusal, deny, spend_budget


class BudgetMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings, limiter: RateLimiter) -> None:
        self.app = app
        self.settings = settings
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get(BUDGET_DUE):
            try:
                await spend_budget(self.settings, self.limiter, identity_in(scope))
            except Refusal as refusal:
                await deny(scope, send, refusal)
                return
        await self.app(scope, receive, send)
