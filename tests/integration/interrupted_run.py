"""Not collected on its own: test_platform_lifecycle.py runs this file in a child pytest and
interrupts it (SIGINT) while the platform and the cluster are up."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.platform import LocalPlatform


def test_waits_to_be_interrupted(platform: LocalPlatform, cluster: LocalCluster) -> None:
    marker = Path(os.environ["FLASHSALE_INTERRUPT_MARKER"])
    marker.write_text(json.dumps({"roots": [str(platform.root), str(cluster.root)]}))
    deadline = time.monotonic() + 300  # bounded: the parent interrupts us long before this
    while time.monotonic() < deadline:
        time.sleep(0.1)
