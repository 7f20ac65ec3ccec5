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
    """At most `requests` attempts per user per window of `seconds` (this replica).

    Fixed windows, aligned for every user: when a window ends its counts go all at once. Nothing is
    kept per user but a count, nothing needs pruning, and memory is bounded by one window's users -
    a crowd of 20,000 new users a second would otherwise leave a timestamped entry each, seconds
    long, in a table that never shrinks.
    """

    __slots__ = ("_counts", "_window_ends", "requests", "seconds")

    def __init__(self, requests: int, seconds: float) -> None:
        self.requests = requests
        self.seconds = seconds
        self._counts: dict[str, int] = {}  # user -> attempts in the current window
        self._window_ends = 0.0

    def allow(self, user: str, now: float) -> bool:
        if now >= self._window_ends:
            self._counts = {}
            self._window_ends = (now // self.seconds + 1) * self.seconds
        seen = self._counts.get(user, 0)
        if seen >= self.requests:
            return False
        self._counts[user] = seen + 1
        return True

    def retry_after(self, now: float) -> int:
        """Seconds until the current window ends (whole, at least 1: a Retry-After header)."""
        return max(1, math.ceil(self._window_ends - now))

    def __len__(self) -> int:
        return len(self._counts)
