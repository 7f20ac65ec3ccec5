"""`python -m flashsale_dev.cluster.node_agent --kubeconfig=K --node-selector=L --state-dir=D --health-port=P`

SIGTERM or SIGINT stops every process the agent started, then exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from flashsale_dev.cluster.node_agent import kube
from flashsale_dev.cluster.node_agent.agent import Agent
from flashsale_dev.cluster.node_agent.health import serve_health
from flashsale_dev.paths import versions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="node_agent", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node-selector", required=True, help="label selector of the nodes to serve")
    parser.add_argument("--state-dir", required=True, type=Path, help="pod logs and scratch directories")
    parser.add_argument("--health-port", required=True, type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe would drown the log
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retries while the apiserver restarts
    args.state_dir.mkdir(parents=True, exist_ok=True)
    agent = Agent(
        kube.api_client(args.kubeconfig),
        args.node_selector,
        args.state_dir,
        f"{versions()['KUBERNETES_VERSION']}-flashsale-node-agent",
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        agent.request_stop()  # nothing that takes a lock here: the main thread may hold it

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    health = serve_health(args.health_port, agent.healthy)
    try:
        agent.run()  # on this, the main thread: see agent.py
    finally:
        health.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
