"""`flashsale gateway`: granian (ASGI, one worker) serving the app built once from the settings.

One worker per process on purpose: the gateway's caches, sold-out flag and coalesced gate calls are
per process, and the Deployment scales by replicas. SIGTERM is graceful: granian stops accepting,
finishes the requests in flight, then the lifespan's shutdown flushes the Kafka producer.

The supervisor process only watches the worker, so it imports nothing of the app: the app's
modules (FastAPI, redis, librdkafka) are loaded in the worker alone, after the fork, and the pod's
two processes do not both hold them (the gateway's memory, docs/benchmarks.md `gateway_rss_mb`).
"""

from __future__ import annotations

import gc
from functools import partial
from typing import Any

from granian.constants import Interfaces, Loops
from granian.server import Server

from flashsale_sale.settings import GatewaySettings

# A pod gets this long after SIGTERM (terminationGracePeriodSeconds) before it is killed.
GRACE_SECONDS = 25


def serve(settings: GatewaySettings) -> None:
    server = Server(
        "flashsale_gateway.app:build_app",  # only names the app in logs; the loader below builds it
        address=settings.bind_host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.auto,
        backlog=2048,
        log_access=False,
        websockets=False,
        workers_kill_timeout=GRACE_SECONDS,
    )
    # The loader runs inside the worker, after the fork: librdkafka's threads must start there.
    server.serve(target_loader=partial(load_app, settings), wrap_loader=False)


def load_app(settings: GatewaySettings) -> Any:
    """Runs in the worker: the app is imported and built there, never in the supervisor."""
    from flashsale_gateway.app import build_app  # noqa: PLC0415 - see the module's docstring

    app = build_app(settings)
    _tune_collector()
    return app


# The buy path allocates a few dozen objects per request and keeps almost none (no reference
# cycles), yet Python's default collector walks its young generation every 700 allocations and,
# every ten of those, everything the app built at start: 14% of the buy path's CPU, measured
# in-process (docs/benchmarks.md). What exists after the build lives as long as the process and
# is frozen out of the walks; the young generation is collected every 20,000 allocations.
GC_YOUNG_THRESHOLD = 20_000


def _tune_collector() -> None:
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
