"""The service proxy's main loop: mirrors of Services and Pods in, three outputs recomputed whole on
every change - the TCP listeners (forwarder.py), the DNS hosts file (dns.py) and the LoadBalancer
edge (load_balancers.py) - all from the one endpoint computation (endpoints.py).

Changes are coalesced: a burst of pod events makes one recomputation, within a second of the last
event. A periodic pass retries what failed (a bind, a status write) and ends stale state.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import kubernetes

from flashsale_dev.cluster.dns import render_hosts
from flashsale_dev.cluster.endpoints import Backend, tcp_routes
from flashsale_dev.cluster.service_proxy.forwarder import Forwarder
from flashsale_dev.cluster.service_proxy.load_balancers import LoadBalancers
from flashsale_dev.cluster.service_proxy.watch import Mirror

log = logging.getLogger(__name__)

RESYNC_SECONDS = 5.0


class ServiceProxy:
    def __init__(
        self, api: kubernetes.client.ApiClient, apiserver: Backend, hosts_file: Path, edge_dir: Path | None
    ) -> None:
        core = kubernetes.client.CoreV1Api(api)
        self._apiserver = apiserver
        self._hosts_file = hosts_file
        self._forwarder = Forwarder()
        self._load_balancers = LoadBalancers(core, edge_dir) if edge_dir else None
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._services = Mirror("services", core.list_service_for_all_namespaces, self._on_change)
        self._pods = Mirror("pods", core.list_pod_for_all_namespaces, self._on_change)
        self._hosts_written: str | None = None
        self.ready = False

    def _on_change(self) -> None:  # from a watcher's thread
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._changed.set)

    def request_stop(self) -> None:  # from a signal handler, on the loop's thread
        self._stopping.set()

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._services.start()
        self._pods.start()
        try:
            while not self._stopping.is_set():
                await self._wait_for_change()
                if self._services.synced.is_set() and self._pods.synced.is_set():
                    await self._sync()
                    self.ready = True
        finally:
            self._services.stop()
            self._pods.stop()
            await self._forwarder.close()
            if self._load_balancers:
                self._load_balancers.release_all()

    async def _wait_for_change(self) -> None:
        changed = asyncio.create_task(self._changed.wait())
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait([changed, stopping], timeout=RESYNC_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        for task in (changed, stopping):
            task.cancel()
        self._changed.clear()

    async def _sync(self) -> None:
        services, pods = self._services.snapshot(), self._pods.snapshot()
        if not await self._forwarder.apply(tcp_routes(services, pods, self._apiserver)):
            # A bind failed (say, the old socket still closing): try again soon, not in a busy loop.
            asyncio.get_running_loop().call_later(0.5, self._changed.set)
        self._write_hosts(render_hosts(services, pods))
        if self._load_balancers:
            try:
                await asyncio.to_thread(self._load_balancers.reconcile, services, pods)
            except Exception:
                log.exception("load balancer sync failed; retrying on the next pass")

    def _write_hosts(self, text: str) -> None:
        if text == self._hosts_written:
            return
        staged = self._hosts_file.with_suffix(".tmp")
        staged.write_text(text)
        os.replace(staged, self._hosts_file)  # CoreDNS's hosts plugin never sees half a file
        self._hosts_written = text
