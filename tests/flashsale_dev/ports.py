"""Free loopback ports that no other platform on this machine will take.

Binding port 0 tells us a port is free *now*; two platforms starting side by side could still be
handed the same one between the probe and the server's own bind. Each handed-out port is therefore
also reserved with an exclusive flock on a file under the temp dir, held for the reservation's life:
the lock dies with the process that holds it, so a crashed run never leaks a reservation.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from pathlib import Path

LOCK_DIR = Path(tempfile.gettempdir()) / "flashsale-ports"


class PortReservations:
    """Ports reserved by this process; `release()` gives them all back."""

    def __init__(self) -> None:
        self._locks: dict[int, int] = {}

    def take(self) -> int:
        LOCK_DIR.mkdir(exist_ok=True)
        for _ in range(200):
            port = _probe_free_port()
            fd = os.open(LOCK_DIR / f"{port}.lock", os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._locks[port] = fd
            return port
        raise RuntimeError("no free loopback port after 200 tries")

    def release(self) -> None:
        for fd in self._locks.values():
            os.close(fd)
        self._locks.clear()


def _probe_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
