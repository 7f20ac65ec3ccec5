"""The LoadBalancer controller, as cloud-provider-kind plays it for kind: each `type: LoadBalancer`
Service gets a loopback address of its own, written to `status.loadBalancer.ingress[].ip`, and the
cluster's one nginx (the lb-edge component) serves it.

Addresses come from the pod-address allocator (a flock per address, never inside a Service range),
are kept across a restart of this process when still free, and are released when the Service goes
and when this process stops. nginx's sites are rewritten and nginx reloaded (SIGHUP) only when
they change.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kubernetes

from flashsale_dev.cluster.edge_config import is_load_balancer, render_sites, sites
from flashsale_dev.cluster.endpoints import key
from flashsale_dev.cluster.node_agent.addresses import PodAddresses

log = logging.getLogger(__name__)

TIMEOUT = (5, 15)


class LoadBalancers:
    def __init__(self, core: kubernetes.client.CoreV1Api, edge_dir: Path) -> None:
        self._core = core
        self._edge_dir = edge_dir
        self._addresses = PodAddresses()
        self._assigned: dict[tuple[str, str], str] = {}
        self._written = ""

    def reconcile(self, services: Sequence[dict[str, Any]], pods: Sequence[dict[str, Any]]) -> None:
        """Blocking (API calls, a file, a signal): run it in a worker thread."""
        wanted = {key(s): s for s in services if is_load_balancer(s)}
        for gone in set(self._assigned) - set(wanted):
            self._addresses.release(self._assigned.pop(gone))
        for name, service in wanted.items():
            ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if name not in self._assigned:
                self._assigned[name] = self._addresses.take(
                    preferred=(ingress[0].get("ip") if ingress else None)
                )
            if [i.get("ip") for i in ingress] != [self._assigned[name]]:
                self._publish(name, self._assigned[name])
        self._write_sites(render_sites(sites(services, pods, self._assigned)))

    def release_all(self) -> None:
        self._addresses.release_all()
        self._assigned.clear()

    def _publish(self, name: tuple[str, str], ip: str) -> None:
        body = {"status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}}
        try:
            self._core.patch_namespaced_service_status(
                name[1], name[0], body, _preload_content=False, _request_timeout=TIMEOUT
            )
            log.info("service %s/%s: load balancer %s", *name, ip)
        except kubernetes.client.ApiException as error:
            log.warning("service %s/%s: cannot write its status: %s", *name, error)

    def _write_sites(self, text: str) -> None:
        if text == self._written:
            return
        path = self._edge_dir / "sites.conf"
        staged = path.with_suffix(".tmp")
        staged.write_text(text)
        os.replace(staged, path)
        self._written = text
        master = self._nginx_master()
        if master is None:
            log.info("nginx not running: it reads the new sites when it starts")
        else:
            os.kill(master, signal.SIGHUP)  # a graceful reload: new workers, old ones finish

    def _nginx_master(self) -> int | None:
        """The pid the lb-edge component wrote (the master's as seen from here: nginx's own pid file
        holds its pid inside its PID namespace), if that process is still our nginx."""
        try:
            pid = int((self._edge_dir / "master.pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid if b"nginx" in cmdline and str(self._edge_dir).encode() in cmdline else None
