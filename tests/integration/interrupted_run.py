"""Not collected on its own: test_platform_lifecycle.py runs this file in a child pytest and
interrupts it (SIGINT) while the platform and the cluster are up, with real pods (volumes, a
ClusterIP and a LoadBalancer Service) running on the cluster."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.leftovers import cluster_network_processes, deploy_echo_app
from flashsale_dev.platform import LocalPlatform


def test_waits_to_be_interrupted(platform: LocalPlatform, cluster: LocalCluster) -> None:
    # A namespace of its own, never deleted here: the interrupted run's teardown must stop the pods.
    with cluster.api_client() as api:
        app = deploy_echo_app(api, f"interrupted-{uuid.uuid4().hex[:8]}", cluster.node_agent.dir)
    marker = Path(os.environ["FLASHSALE_INTERRUPT_MARKER"])
    started = {
        "roots": [str(platform.root), str(cluster.root)],
        "pods": app.pods,
        "pod_dirs": list(app.pod_dirs),
        "addresses": list(app.addresses),
        "network": cluster_network_processes(cluster),
    }
    partial = marker.with_name(f".{marker.name}.tmp")
    partial.write_text(json.dumps(started))
    partial.replace(marker)  # the parent reads it as soon as it exists: never half-written
    deadline = time.monotonic() + 300  # bounded: the parent interrupts us long before this
    while time.monotonic() < deadline:
        time.sleep(0.1)
