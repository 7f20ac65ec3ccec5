"""`python -m flashsale_operator` (the `flashsale/operator` image): kopf, every namespace, JSON logs.

Standalone (one replica, `strategy: Recreate` in manifests/operator.yaml): no peering. kopf's
liveness endpoint and the metrics bind the pod's own address (FLASHSALE_OPERATOR_BIND_HOST, from the
downward API).
"""

from __future__ import annotations

import os

import kopf

from flashsale_operator import config, handlers

LIVENESS_PORT = 8080


def main() -> None:
    config.load()  # a broken configuration stops here with one line per problem (exit 2)
    kopf.configure(log_format=kopf.LogFormat.JSON)
    bind = os.environ.get(handlers.BIND_HOST_ENV, "127.0.0.1")
    kopf.run(
        standalone=True,
        clusterwide=True,
        liveness_endpoint=f"http://{bind}:{LIVENESS_PORT}/healthz",
        memo=kopf.Memo(),
    )


if __name__ == "__main__":
    main()
