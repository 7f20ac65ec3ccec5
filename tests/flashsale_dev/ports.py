"""Free loopback ports that no other platform on this machine will take.

Binding port 0 tells us a port is free *now*; two platforms starting side by side could still be
handed the same one between the probe and the server's own bind. Each handed-out port is therefore
also reserved with an exclusive flock on a file under the temp dir, held for the reservation's life:
the lock dies with the process that holds it, so a crashed run never leaks a reservation, and a
release removes the file, so they do not pile up.
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
            fd = lock_exclusively(_lock_path(port))
            if fd is not None:
                self._locks[port] = fd
                return port
        raise RuntimeError("no free loopback port after 200 tries")

    def release(self) -> None:
        for port, fd in self._locks.items():
            unlock_and_remove(_lock_path(port), fd)
        self._locks.clear()


def lock_exclusively(path: Path) -> int | None:
    """An open fd holding an exclusive flock on `path`, or None if someone else holds it."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # A releaser may have unlinked the file between our open and our lock: then the lock
        # guards nothing, as a newcomer would create and lock a new file under the same name.
        if os.fstat(fd).st_ino != path.stat().st_ino:
            raise BlockingIOError
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    return fd


def unlock_and_remove(path: Path, fd: int) -> None:
    """Unlinked while still locked, then closed: see the inode check in lock_exclusively()."""
    path.unlink(missing_ok=True)
    os.close(fd)


def _lock_path(port: int) -> Path:
    return LOCK_DIR / f"{port}.lock"


def _probe_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
