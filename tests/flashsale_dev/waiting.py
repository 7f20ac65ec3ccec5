"""Waiting on conditions, never on sleeps: poll with a generous deadline, explain what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ConditionTimeout(AssertionError):
    pass


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float = 60.0,
    interval: float = 0.2,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
) -> T:
    """Call `probe` until it returns something truthy, and return that; exceptions count as "not yet".

    On timeout, fail with `what`, the last exception and `describe()` (the state that was seen).
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
            if result:
                return result
        except Exception as error:
            last_error = error
        if time.monotonic() >= deadline:
            details = f"; last error: {last_error!r}" if last_error else ""
            seen = f"\n{describe()}" if describe else ""
            raise ConditionTimeout(f"timed out after {timeout:.0f}s waiting for {what}{details}{seen}")
        time.sleep(interval)
