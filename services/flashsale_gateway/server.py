"""`flashsale gateway`: granian (ASGI, one worker) serving the app built once from the settings.

One worker per process on purpose: the gateway's caches, sold-out flag and coalesced gate calls are
per process, and the Deployment scales by replicas. SIGTERM is graceful: granian stops accepting,
finishes the requests in flight, then the lifespan's shutdown flushes the Kafka producer.
"""

from __future__ import annotations

from functools import partial

from granian.constants import Interfaces, Loops
from granian.server import Server

from flashsale_gateway.app import build_app
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
    server.serve(target_loader=partial(build_app, settings), wrap_loader=False)
