"""What every local component shares: a directory, fixed ports, and start/stop/kill/restart.

Ports and the data directory are chosen once, at construction, so a test can kill a component
and start it again on the same address with the same data, as a crash and restart would.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from flashsale_dev.ports import PortReservations
from flashsale_dev.process import ManagedProcess


class Component(ABC):
    name: ClassVar[str]
    ready_timeout: ClassVar[float] = 60.0

    def __init__(self, root: Path, ports: PortReservations) -> None:
        self.dir = root / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = ports.take()
        self._prepared = False
        self._initialised = False
        self._process: ManagedProcess | None = None

    @property
    def process(self) -> ManagedProcess:
        if self._process is None:
            self._process = self._make_process()
        return self._process

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.alive

    def start(self) -> None:
        """Start (or start again, on the same port and data) and wait until it answers."""
        self.prepare()
        self.launch()
        self.await_ready()

    def prepare(self) -> None:
        """One-time work before the first start; safe to run in a worker thread."""
        if not self._prepared:
            self._prepare()
            self._prepared = True

    def launch(self) -> None:
        """Spawn the process without waiting. Call from a thread that outlives it (see process.py)."""
        self.prepare()
        self.process.start()

    def await_ready(self) -> None:
        self.process.wait_until(self._ready, self.ready_timeout, "readiness")
        if not self._initialised:
            self._after_first_start()
            self._initialised = True

    def stop(self) -> None:
        """A graceful shutdown, as an operator would do it."""
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown work, data left as it is on disk."""
        if self._process is not None:
            self._process.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.name}.log"

    def exports(self) -> dict[str, str]:
        """The environment variables that tell a client how to reach this component (if any)."""
        return {}

    @abstractmethod
    def _make_process(self) -> ManagedProcess: ...

    @abstractmethod
    def _ready(self) -> bool: ...

    def _prepare(self) -> None:
        """One-time work before the first start (initdb, storage format, config files)."""

    def _after_first_start(self) -> None:
        """One-time work once it first answers (create the database, ...)."""
