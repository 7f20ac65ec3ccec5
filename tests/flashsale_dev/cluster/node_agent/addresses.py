"""Pod addresses: one loopback address 127.a.b.c per pod, never 127.0.0.x (the machine's own).

Linux routes all of 127.0.0.0/8 to `lo`, so every pod can bind its own address and port 8080 without
colliding. Several clusters may run on one machine: an address is reserved with an exclusive flock,
as ports.py does for ports, and the lock dies with the agent, so a crash never leaks one. Addresses
in a cluster's Service range (service_range.py) are never handed out.
"""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

from flashsale_dev.cluster.service_range import in_reserved_range
from flashsale_dev.ports import LOCK_DIR, lock_exclusively, unlock_and_remove


def is_pod_address(address: str) -> bool:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return ip in ipaddress.IPv4Network("127.0.0.0/8") and not address.startswith("127.0.0.")


def random_pod_address(rng: random.Random) -> str:
    return f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


class PodAddresses:
    """The addresses this agent holds; each stays reserved until released."""

    def __init__(self, lock_dir: Path = LOCK_DIR, rng: random.Random | None = None) -> None:
        self._lock_dir = lock_dir
        self._rng = rng or random.Random()
        self._held: dict[str, int] = {}

    def take(self, preferred: str | None = None) -> str:
        """A fresh address, or `preferred` (the pod's address before an agent restart) if still free."""
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        if preferred and is_pod_address(preferred) and preferred not in self._held and self._lock(preferred):
            return preferred
        for _ in range(1000):
            address = random_pod_address(self._rng)
            if address not in self._held and self._lock(address):
                return address
        raise RuntimeError("no free loopback pod address after 1000 tries")

    def release(self, address: str) -> None:
        fd = self._held.pop(address, None)
        if fd is not None:
            unlock_and_remove(self._path(address), fd)

    def discard_stale(self, address: str) -> None:
        """Remove the lock file of an address nobody holds: left by an agent that was killed."""
        stale = address not in self._held and is_pod_address(address) and self._path(address).exists()
        if stale and self._lock(address):
            self.release(address)

    def release_all(self) -> None:
        for address in list(self._held):
            self.release(address)

    def _path(self, address: str) -> Path:
        return self._lock_dir / f"ip-{address}.lock"

    def _lock(self, address: str) -> bool:
        fd = lock_exclusively(self._path(address))
        if fd is None:
            return False
        self._held[address] = fd
        # Locked first, checked second (service_range.py does the reverse): no race lets both win.
        if in_reserved_range(address, self._lock_dir):
            self.release(address)
            return False
        return True
