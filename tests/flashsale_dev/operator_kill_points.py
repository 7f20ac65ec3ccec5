"""Test-only kill points: the operator SIGKILLs itself right after a named step of one sale.

Only the test build of the operator (`python -m flashsale_dev.operator_test_build`, image
`flashsale/operator-test` on the local platform) installs them, through the product's one seam,
`flashsale_operator.checkpoints`; the shipped image and manifests have no way to switch them on.
A FlashSale annotated `flashsale.dev/test-exit-after: <step>[,<step>...]` then makes the process
SIGKILL itself the first time that step is reached for that sale - no cleanup, exactly like a node
losing power. A marker in Redis remembers the kill, so the restarted operator goes on. This makes
the restart tests deterministic instead of racing a kill against the clock.

Steps (checkpoints.Step): `prewarmed`, `before-start`, `flipped`, `live`, `scaled`.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Mapping
from typing import Any, Final, get_args

import redis

from flashsale_operator import checkpoints

log = logging.getLogger(__name__)

ANNOTATION: Final = "flashsale.dev/test-exit-after"
STEPS: Final = frozenset(get_args(checkpoints.Step))
MARKER_TTL_SECONDS: Final = 3600


def armed(annotations: Mapping[str, str]) -> frozenset[str]:
    """The steps a sale with these annotations asks the operator to die after."""
    return frozenset(s.strip() for s in annotations.get(ANNOTATION, "").split(",")) & STEPS


class KillPoints:
    """The hook: dies at an armed step of a sale, once per sale and step (the marker in Redis)."""

    def __init__(self, client: Callable[[], redis.Redis]) -> None:
        self._client = client

    def __call__(self, step: checkpoints.Step, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        if step not in armed(meta.get("annotations") or {}):
            return
        sale_id = str(meta.get("uid"))
        marker = f"flashsale-operator:killpoint:{sale_id}:{step}"
        if self._client().set(marker, "1", nx=True, ex=MARKER_TTL_SECONDS):
            log.warning("kill point %s reached for sale %s: SIGKILL", step, sale_id)
            os.kill(os.getpid(), signal.SIGKILL)


def install(redis_url: str) -> None:
    """Hooks the kill points into this process's operator (its markers in the platform's Redis)."""
    clients: list[redis.Redis] = []

    def client() -> redis.Redis:
        if not clients:
            clients.append(redis.Redis.from_url(redis_url))
        return clients[0]

    checkpoints.set_hook(KillPoints(client))
