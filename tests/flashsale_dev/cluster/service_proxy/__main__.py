"""`python -m flashsale_dev.cluster.service_proxy --kubeconfig=K --hosts-file=F --health-port=P
[--edge-dir=D]`

Serves every ClusterIP:port of the cluster (TCP), writes the headless Services' DNS hosts file and,
with --edge-dir, runs the LoadBalancer controller for the nginx there. SIGTERM/SIGINT: exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes

from flashsale_dev.cluster.endpoints import Backend
from flashsale_dev.cluster.node_agent.health import serve_health
from flashsale_dev.cluster.service_proxy.proxy import ServiceProxy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="service_proxy", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--hosts-file", required=True, type=Path)
    parser.add_argument("--health-port", required=True, type=int)
    parser.add_argument(
        "--edge-dir", type=Path, help="the lb-edge nginx's directory (sites.conf, master.pid)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retries while the apiserver restarts
    api = kubernetes.config.new_client_from_config(config_file=args.kubeconfig)
    # `default/kubernetes` forwards to the apiserver this kubeconfig names (the real loopback port).
    server = urlsplit(api.configuration.host)
    apiserver = Backend(server.hostname or "127.0.0.1", server.port or 443)
    proxy = ServiceProxy(api, apiserver, args.hosts_file, args.edge_dir)
    health = serve_health(args.health_port, lambda: proxy.ready)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, proxy.request_stop)
        await proxy.run()

    try:
        asyncio.run(run())
    finally:
        health.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
