"""Fail-fast limits in process: the sale's admission rate and each user's attempt rate (this replica).

Both answer in constant time without I/O; a refused request costs almost nothing and never reaches
Redis. The one-reservation-per-user rule that must hold across replicas lives in the Redis gate.
"""

from __future__ import annotations

import math


class TokenBucket:
    """`rate` admissions per second with bursts up to `burst`: the sale's admission control."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float) -> bool:
        tokens = self._tokens + (now - self._last) * self.rate
        self._last = now
        if tokens >= 1.0:
            self._tokens = min(tokens, self.burst) - 1.0
            return True
        self._tokens = tokens
        return False

    def retry_after(self) -> int:
        """Whole seconds until a token is back (Retry-After), at least one."""
        return max(1, math.ceil((1.0 - self._tokens) / self.rate))


class UserRateLimit:
    """At most `requests` attempts per user per `seconds` window (fixed windows, this replica)."""

    __slots__ = ("_windows", "requests", "seconds")

    def __init__(self, requests: int, seconds: float) -> None:
        self.requests = requests
        self.seconds = seconds
        self._windows: dict[str, list[float]] = {}  # user -> [window start, attempts]

    def allow(self, user: str, now: float) -> bool:
        window = self._windows.get(user)
        if window is None or now - window[0] >= self.seconds:
            self._windows[user] = [now, 1.0]
            return True
        if window[1] >= self.requests:
            return False
        window[1] += 1.0
        return True

    def retry_after(self, user: str, now: float) -> int:
        window = self._windows.get(user)
        left = self.seconds - (now - window[0]) if window else 0.0
        return max(1, math.ceil(left))

    def prune(self, now: float) -> int:
        """Forgets users whose window has passed (called from a background tick, never per request)."""
        stale = [user for user, window in self._windows.items() if now - window[0] >= self.seconds]
        for user in stale:
            del self._windows[user]
        return len(stale)

    def __len__(self) -> int:
        return len(self._windows)
