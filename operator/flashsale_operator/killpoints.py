"""Test-only: the operator kills itself right after a named step of one sale, to test its restarts.

Enabled only when the operator runs with `FLASHSALE_OPERATOR_TEST_KILL_POINTS=enabled` (never in
production); then a FlashSale annotated `flashsale.dev/test-exit-after: <step>[,<step>...]` makes
the process SIGKILL itself the first time that step is reached for that sale - no cleanup, exactly
like a node losing power. A marker in Redis remembers the kill, so the restarted operator goes on.
This makes the restart tests deterministic instead of racing a kill against the clock.

Steps: `prewarmed` (the gate built, nothing recorded yet), `before-start` (less than a second
before startsAt), `flipped` (the start flag on, the status not yet Live), `live` (the status says
Live), `scaled` (a scale written, no status or Event yet).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping
from typing import Final

import redis

log = logging.getLogger(__name__)

ENABLE_ENV: Final = "FLASHSALE_OPERATOR_TEST_KILL_POINTS"
ANNOTATION: Final = "flashsale.dev/test-exit-after"
STEPS: Final = frozenset({"prewarmed", "before-start", "flipped", "live", "scaled"})
MARKER_TTL_SECONDS: Final = 3600


def armed(annotations: Mapping[str, str]) -> frozenset[str]:
    """The steps this sale asks to die after; none unless the operator was started for tests."""
    if os.environ.get(ENABLE_ENV) != "enabled":
        return frozenset()
    return frozenset(s.strip() for s in annotations.get(ANNOTATION, "").split(",")) & STEPS


def reached(step: str, armed_steps: frozenset[str], sale_id: str, client: redis.Redis) -> None:
    """Dies here if `step` is armed for this sale and was not reached before."""
    if step not in armed_steps:
        return
    marker = f"flashsale-operator:killpoint:{sale_id}:{step}"
    if client.set(marker, "1", nx=True, ex=MARKER_TTL_SECONDS):
        log.warning("kill point %s reached for sale %s: SIGKILL", step, sale_id)
        os.kill(os.getpid(), signal.SIGKILL)
