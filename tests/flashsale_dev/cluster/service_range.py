"""Each cluster's Service range: a /16 of 127.0.0.0/8 (127.N.0.0/16), so ClusterIPs are real loopback
addresses the service proxy and CoreDNS can listen on.

Several clusters may run on one machine, and node agents hand out pod addresses anywhere in
127.1.0.0-127.254.255.255: a range is reserved with an exclusive flock on
`<lock dir>/svc-127.N.0.0-16.lock`, as ports and pod addresses are, and a range holding a pod address
is never taken. The pod-address allocator in turn skips reserved ranges (`in_reserved_range`). Both
lock first and check the other's files second, so two racing allocators never both win.
"""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

from flashsale_dev.ports import LOCK_DIR, lock_exclusively, unlock_and_remove

# 127.0.x is the machine's own; pods use 127.1-254.x.x. Ranges come from the upper half, where they
# are less likely to meet pod addresses already taken.
CANDIDATES = range(128, 255)


def _lock_path(lock_dir: Path, second_octet: int) -> Path:
    return lock_dir / f"svc-127.{second_octet}.0.0-16.lock"


def _held_by_someone(path: Path) -> bool:
    """True if a live process holds the lock; a stale file (its holder died) is removed."""
    if not path.exists():
        return False
    fd = lock_exclusively(path)
    if fd is None:
        return True
    unlock_and_remove(path, fd)
    return False


def in_reserved_range(address: str, lock_dir: Path = LOCK_DIR) -> bool:
    """Whether `address` lies in a Service range some cluster on this machine holds."""
    ip = ipaddress.IPv4Address(address)
    if ip not in ipaddress.IPv4Network("127.0.0.0/8"):
        return False
    return _held_by_someone(_lock_path(lock_dir, ip.packed[1]))


def _pod_addresses_in(lock_dir: Path, second_octet: int) -> bool:
    return any(_held_by_someone(path) for path in lock_dir.glob(f"ip-127.{second_octet}.*.lock"))


class ServiceRange:
    """One reserved /16, held until `release()` (or until this process dies)."""

    def __init__(self, lock_dir: Path = LOCK_DIR, rng: random.Random | None = None) -> None:
        self._lock_dir = lock_dir
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        chooser = rng or random.Random()  # spreading ranges, not secrets
        for second_octet in chooser.sample(CANDIDATES, len(CANDIDATES)):
            fd = lock_exclusively(_lock_path(lock_dir, second_octet))
            if fd is None:
                continue
            if _pod_addresses_in(lock_dir, second_octet):
                unlock_and_remove(_lock_path(lock_dir, second_octet), fd)
                continue
            self._fd: int | None = fd
            self.network = ipaddress.IPv4Network(f"127.{second_octet}.0.0/16")
            return
        raise RuntimeError("no free /16 of 127.0.0.0/8 for a Service range")

    @property
    def cidr(self) -> str:
        return str(self.network)

    def address(self, offset: int) -> str:
        """The range's address at `offset`: 1 is the `kubernetes` Service, 10 the DNS service."""
        return str(self.network.network_address + offset)

    def release(self) -> None:
        if self._fd is not None:
            unlock_and_remove(_lock_path(self._lock_dir, self.network.network_address.packed[1]), self._fd)
            self._fd = None
