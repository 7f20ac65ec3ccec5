"""The local platform: Redis, PostgreSQL, Kafka and Prometheus side by side in one directory.

Several platforms can run at once: each has its own temp directory and reserved ports. Use it as a
context manager (or start/stop); `stop()` leaves no process and, unless asked to keep it, no state.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.components import Component, Kafka, Postgres, Prometheus, Redis
from flashsale_dev.ports import PortReservations
from flashsale_dev.process import processes_mentioning


class LocalPlatform:
    def __init__(
        self,
        root: Path | None = None,
        *,
        redis_appendonly: bool = False,
        postgres_durable: bool = False,
        with_cluster: bool = False,
    ) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="flashsale-"))
        self.root.mkdir(parents=True, exist_ok=True)
        # The postgres user must be able to reach its data directory inside our tree.
        self.root.chmod(0o755)
        self._ports = PortReservations()
        self.redis = Redis(self.root, self._ports, appendonly=redis_appendonly)
        self.postgres = Postgres(self.root, self._ports, durable=postgres_durable)
        self.kafka = Kafka(self.root, self._ports)
        self.prometheus = Prometheus(self.root, self._ports)
        self.cluster = LocalCluster(self.root / "cluster", self._ports) if with_cluster else None

    @property
    def components(self) -> list[Component]:
        return [self.redis, self.postgres, self.kafka, self.prometheus]

    def start(self) -> None:
        try:
            # initdb and Kafka's storage format each start a process of their own: overlap them.
            preparations = [c.prepare for c in self.components]
            if self.cluster:
                preparations.append(self.cluster.prepare)
            with ThreadPoolExecutor(max_workers=len(preparations)) as pool:
                for prepared in [pool.submit(step) for step in preparations]:
                    prepared.result()
            # Spawned from this thread so that they die with it (PR_SET_PDEATHSIG).
            for component in self.components:
                component.launch()
            if self.cluster:
                self.cluster.start()  # meanwhile the middleware warms up
            for component in self.components:
                component.await_ready()
        except BaseException:
            self.stop()
            raise
        self.state_file.write_text(json.dumps({"exports": self.exports(), "pids": self.pids()}, indent=2))

    def stop(self, *, keep_state: bool = False) -> None:
        if self.cluster:
            self.cluster.stop()
        for component in reversed(self.components):
            component.stop()
        self._ports.release()
        if not keep_state:
            shutil.rmtree(self.root, ignore_errors=True)

    def reserve_port(self) -> int:
        """A free loopback port held for this platform's life (for a metrics endpoint, say)."""
        return self._ports.take()

    def exports(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for component in self.components:
            merged.update(component.exports())
        if self.cluster:
            merged.update(self.cluster.exports())
        return merged

    def shell_exports(self) -> str:
        return "".join(f"export {key}={value}\n" for key, value in self.exports().items())

    def pids(self) -> dict[str, int | None]:
        return {c.name: c.process.pid for c in self._everything()}

    def leftover_processes(self) -> list[int]:
        """Live processes that still mention this platform's directory (should be none after stop)."""
        return processes_mentioning(str(self.root))

    @property
    def state_file(self) -> Path:
        return self.root / "platform.json"

    def logs(self) -> Iterator[Path]:
        return (c.log_path for c in self._everything())

    def _everything(self) -> list[Component]:
        return self.components + (self.cluster.components if self.cluster else [])

    def __enter__(self) -> LocalPlatform:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(keep_state=bool(os.environ.get("FLASHSALE_KEEP_STATE")))
