"""Test-only: the operator kills itself right after a named step, once per sale, to test restarts.

`FLASHSALE_OPERATOR_EXIT_AFTER=<step>[,<step>...]` (unset in production). When a step is reached for
a sale for the first time (a marker in Redis, so the restarted operator does not die again at the
same step), the process SIGKILLs itself: no cleanup, exactly like a node losing power. This makes
the restart tests deterministic instead of racing a kill against the clock.

Steps: `prewarmed` (the gate built, nothing recorded yet), `before-start` (less than a second
before startsAt), `flipped` (the start flag on, the status not yet Live), `live` (the status says
Live), `scaled` (a scale written, no status or Event yet).
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Final

import redis

log = logging.getLogger(__name__)

ENV: Final = "FLASHSALE_OPERATOR_EXIT_AFTER"
STEPS: Final = frozenset({"prewarmed", "before-start", "flipped", "live", "scaled"})
MARKER_TTL_SECONDS: Final = 3600


def armed() -> frozenset[str]:
    return frozenset(s.strip() for s in os.environ.get(ENV, "").split(",") if s.strip()) & STEPS


def reached(step: str, sale_id: str, client: redis.Redis) -> None:
    """Dies here if `step` is armed and was not reached for this sale before."""
    if step not in armed():
        return
    marker = f"flashsale-operator:killpoint:{sale_id}:{step}"
    if client.set(marker, "1", nx=True, ex=MARKER_TTL_SECONDS):
        log.warning("kill point %s reached for sale %s: SIGKILL", step, sale_id)
        os.kill(os.getpid(), signal.SIGKILL)
