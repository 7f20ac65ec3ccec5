"""Where a real node lives on the host: its slot, names and address ranges (pure, but for the lock).

The ranges are ones the project creates and nothing on the machine routes: nodes sit on
198.51.100.0/24 (TEST-NET-2, RFC 5737; this machine's own uplink is on TEST-NET-1 and its proxy on
TEST-NET-3), one /30 per node (host end .4k+1, node end .4k+2); pods on 10.246.0.0/16, one /24 per
node (kwok's fake pod addresses use 10.244.0.0/16). A slot is held with an exclusive flock, as
ports are, so two runs on one machine never share one.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flashsale_dev.ports import LOCK_DIR, lock_exclusively

NODE_NETWORK = ipaddress.IPv4Network("198.51.100.0/24")
POD_NETWORK = ipaddress.IPv4Network("10.246.0.0/16")
SLOTS = range(1, 64)  # /30s 1..63 of the /24 (slot 0 would hold the network's own address)
LINK_PREFIX = "fsnode"  # host-side veth names: fsnode<slot> (IFNAMSIZ allows 15 characters)


@dataclass(frozen=True)
class NodeAddresses:
    slot: int

    @property
    def netns(self) -> str:
        return f"flashsale-node-{self.slot}"

    @property
    def host_link(self) -> str:
        return f"{LINK_PREFIX}{self.slot}"

    @property
    def host_ip(self) -> str:
        return str(NODE_NETWORK.network_address + 4 * self.slot + 1)

    @property
    def node_ip(self) -> str:
        return str(NODE_NETWORK.network_address + 4 * self.slot + 2)

    @property
    def link_prefix_len(self) -> int:
        return 30

    @property
    def pod_cidr(self) -> str:
        return str(ipaddress.IPv4Network((int(POD_NETWORK.network_address) + (self.slot << 8), 24)))

    @property
    def cgroup_root(self) -> str:
        return f"/flashsale-node-{self.slot}"

    @property
    def run_dir(self) -> Path:
        """Short, for unix sockets (see configs.NodeLayout)."""
        return Path("/run") / f"flashsale-node-{self.slot}"


def foreign_routes(routes: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    """Routes (`ip -j route` entries) of anyone but the project that overlap the node ranges."""
    mine = (NODE_NETWORK, POD_NETWORK)
    clashing = []
    for route in routes:
        if route.get("dst") in (None, "default") or route.get("dev", "").startswith(LINK_PREFIX):
            continue
        network = ipaddress.IPv4Network(route["dst"], strict=False)
        if any(network.overlaps(range_) for range_ in mine):
            clashing.append(route)
    return clashing


def read_routes(ip_json: str) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = json.loads(ip_json or "[]")
    return entries


def slot_lock(slot: int, lock_dir: Path = LOCK_DIR) -> Path:
    return lock_dir / f"real-node-{slot}.lock"


def reserve_slot(lock_dir: Path = LOCK_DIR) -> tuple[NodeAddresses, int]:
    """The first free slot and the fd holding its lock (closing the fd frees the slot)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    for slot in SLOTS:
        fd = lock_exclusively(slot_lock(slot, lock_dir))
        if fd is not None:
            return NodeAddresses(slot), fd
    raise RuntimeError(f"all {len(SLOTS)} real-node slots are taken")


def slot_held(slot: int, lock_dir: Path = LOCK_DIR) -> bool:
    """Whether a live process holds the slot (a free lock file is left for the next taker)."""
    path = slot_lock(slot, lock_dir)
    if not path.exists():
        return False
    fd = lock_exclusively(path)
    if fd is None:
        return True
    os.close(fd)
    return False
