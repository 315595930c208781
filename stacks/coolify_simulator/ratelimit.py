"""throttle:api — Laravel's fixed-window limiter (app/Providers/RouteServiceProvider.php:47-52,
Illuminate\\Cache\\RateLimiter, Illuminate\\Routing\\Middleware\\ThrottleRequests)."""

from __future__ import annotations

import math
import time


class FixedWindowLimiter:
    """`Limit::perMinute(config('api.rate_limit'))` keyed by the user id (tokens of one user
    share it). The window is 60 s from the first hit (a `:timer` key added once, never
    extended); a request is refused when attempts >= limit while the timer lives; refused
    requests are not counted (ThrottleRequests::handle checks before it hits)."""

    DECAY = 60

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.windows: dict[str, dict[str, float]] = {}  # key → {"timer": end, "attempts": n}

    def shift(self, delta: float) -> None:
        for window in self.windows.values():
            window["timer"] += delta

    def attempt(
        self, key: str, now: float, *, limit: int | None = None
    ) -> tuple[bool, dict[str, str]]:
        """(allowed, headers). Headers as ThrottleRequests::getHeaders. `limit` for a route whose
        Limit differs on the same key (RouteServiceProvider gives `api/health` 1000/min); the
        limiter's own limit 0 switches limiting off (a simulator knob, not Coolify's)."""
        if not self.limit:
            return True, {}
        limit = self.limit if limit is None else limit
        window = self.windows.get(key)
        if window is not None and now >= window["timer"]:
            window = None  # RateLimiter: the counter and its :timer expired together
            self.windows.pop(key, None)
        if window is not None and window["attempts"] >= limit:
            retry_after = max(0, math.ceil(window["timer"] - now))
            return False, {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
                "Retry-After": str(retry_after),
                "X-RateLimit-Reset": str(int(time.time()) + retry_after),
            }
        if window is None:
            window = self.windows[key] = {"timer": now + self.DECAY, "attempts": 0}
        window["attempts"] += 1
        return True, {
            "X-RateLimit-Limit": str(limit),
            # RateLimiter::remaining: max(0, limit - attempts), read after the controller ran
            # (here under the simulator's one lock, so the same as right after the hit).
            "X-RateLimit-Remaining": str(max(0, limit - int(window["attempts"]))),
        }
