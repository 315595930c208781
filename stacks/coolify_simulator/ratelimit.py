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

    def attempt(self, key: str, now: float) -> tuple[bool, dict[str, str]]:
        """(allowed, headers). Headers as ThrottleRequests::getHeaders."""
        if not self.limit:
            return True, {}
        window = self.windows.get(key)
        if window is not None and now >= window["timer"]:
            window = None  # RateLimiter: the counter and its :timer expired together
            self.windows.pop(key, None)
        if window is not None and window["attempts"] >= self.limit:
            retry_after = max(0, math.ceil(window["timer"] - now))
            return False, {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": "0",
                "Retry-After": str(retry_after),
                "X-RateLimit-Reset": str(int(time.time()) + retry_after),
            }
        if window is None:
            window = self.windows[key] = {"timer": now + self.DECAY, "attempts": 0}
        window["attempts"] += 1
        return True, {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - int(window["attempts"]))),
        }
