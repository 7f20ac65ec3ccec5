"""The HTTP servers under test, as real processes: the baselines on granian and uvicorn, the gateway.

Every server gets the options the gateway's own server uses (bench/server_options.py), so the
baselines differ from the gateway only in the application. Processes are `ManagedProcess`es: their
own session, SIGKILLed if this runner dies, and stopped (process tree and all) by `stop()`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.server_options import granian_argv, uvicorn_argv
from flashsale_dev.process import ManagedProcess

VENV_BIN = Path(sys.executable).parent


@dataclass
class Server:
    """One running HTTP server: where it answers and the process that serves it."""

    name: str
    port: int
    process: ManagedProcess
    probe_path: str = "/"
    probe_method: str = "POST"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.process.start()
        self.process.wait_until(self._answers, timeout, "an HTTP answer")

    def stop(self) -> None:
        self.process.stop(timeout=10.0)

    def rss_mb(self) -> float:
        """Resident memory of the server's whole process tree (a supervisor and its workers)."""
        pid = self.process.pid
        return 0.0 if pid is None else sum(_status_kb(p, "Rss") for p in _tree(pid)) / 1024.0

    def memory(self) -> dict[str, object]:
        """RSS per process of the tree, and PSS (shared pages counted once, as the pod's cgroup does)."""
        pids = self.pids()
        return {
            "rss_mb_by_process": [round(_status_kb(p, "Rss") / 1024.0, 1) for p in pids],
            "pss_mb": round(sum(_status_kb(p, "Pss") for p in pids) / 1024.0, 1),
        }

    def pids(self) -> list[int]:
        pid = self.process.pid
        return [] if pid is None else _tree(pid)

    def _answers(self) -> bool:
        with httpx.Client(timeout=2.0) as client:
            client.request(self.probe_method, self.base_url + self.probe_path)
        return True


def baseline(
    name: str, server: str, target: str, port: int, *, log_dir: Path, env: Mapping[str, str]
) -> Server:
    """A baseline app (`module:attribute`) on `server` ("granian" or "uvicorn")."""
    argv = granian_argv(target, port) if server == "granian" else uvicorn_argv(target, port)
    process = ManagedProcess(name, [str(VENV_BIN / argv[0]), *argv[1:]], log_dir / f"{name}.log", env=env)
    return Server(name=name, port=port, process=process)


def _tree(pid: int) -> list[int]:
    found = [pid]
    for child in _children(pid):
        found.extend(_tree(child))
    return found


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return children


def _status_kb(pid: int, field: str) -> int:
    """A field of /proc/<pid>/smaps_rollup ("Rss", "Pss") in kB; 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def settle(seconds: float = 1.0) -> None:
    """A pause between measurements, so one run's tail (GC, flushes) does not land in the next."""
    time.sleep(seconds)
