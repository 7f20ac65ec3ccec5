"""What all real nodes on this machine share and the last one out restores: host-wide sysctls that
kubelet sets, and host paths that kubelet/containerd create outside their configured directories.

The first node to join records the sysctls' original values and which of those paths were absent;
the last node to leave writes the values back and removes the paths. A holder whose slot lock is
free is dead (its runner was killed): it no longer counts, and the originals it saw are kept.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flashsale_dev.cluster.real_node import host
from flashsale_dev.cluster.real_node.addresses import slot_held
from flashsale_dev.ports import LOCK_DIR

# kubelet writes these three host-wide (they are not per network namespace); ip_forward is per
# namespace, and the bridge plugin sets it only in the node's own: recorded to prove it.
KUBELET_SYSCTLS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops", "net.ipv4.ip_forward")
# Fixed paths outside the node's directories, compiled in: kubelet's container-log symlinks and its
# device-plugin socket dir (under /var/lib/kubelet whatever --root-dir says), containerd's shim
# sockets, the CNI library's result cache, and iproute2's directory of named network namespaces.
HOST_PATHS = (
    Path("/var/log/containers"),
    Path("/var/lib/kubelet"),
    Path("/run/containerd"),
    Path("/var/lib/cni"),
    host.NETNS_DIR,
)


def ledger_dir() -> Path:
    """Next to the port locks, in the temp dir: journals outlive a killed runner, not a reboot
    (which takes netns, veths, routes and cgroups with it too)."""
    return LOCK_DIR.parent / "flashsale-real-nodes"


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "host.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield directory / "host.json"


def _load(path: Path) -> dict[str, Any]:
    if path.exists():
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
    return {}


def join(slot: int, directory: Path | None = None) -> None:
    with _locked(directory or ledger_dir()) as path:
        ledger = _load(path)
        if not ledger:
            ledger = {
                "sysctls": {name: host.read_sysctl(name) for name in KUBELET_SYSCTLS},
                "created_paths": [str(p) for p in HOST_PATHS if not p.exists()],
                "holders": [],
            }
        ledger["holders"] = sorted({*ledger["holders"], slot})
        path.write_text(json.dumps(ledger, indent=1))


def remove_created_path(path: Path) -> None:
    """`ip netns add` makes /run/netns a mount point of itself: unmounted before it is removed - but
    only once empty: a namespace someone else named there since must keep its mount."""
    if path == host.NETNS_DIR and path.exists() and any(path.iterdir()):
        return
    host.unmount_under(path)
    if path in host.mounts_at_or_under(path):
        host.run("umount", "--lazy", str(path), check=False)
    shutil.rmtree(path, ignore_errors=True)


def leave(slot: int, directory: Path | None = None) -> None:
    with _locked(directory or ledger_dir()) as path:
        ledger = _load(path)
        if not ledger:
            return
        ledger["holders"] = [s for s in ledger["holders"] if s != slot and slot_held(s)]
        if ledger["holders"]:
            path.write_text(json.dumps(ledger, indent=1))
            return
        for name, value in ledger["sysctls"].items():
            if host.read_sysctl(name) != value:
                host.write_sysctl(name, value)
        for created in map(Path, ledger["created_paths"]):
            remove_created_path(created)
        path.unlink()
