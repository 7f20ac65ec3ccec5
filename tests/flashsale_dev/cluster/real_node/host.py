"""The host operations a real node needs, each paired with its undo (iproute2, cgroupfs, mounts).

Only names the project made are ever touched: a netns/veth/route/cgroup named after the node's slot
and mounts under the node's own data directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

CGROUP_MOUNT_TYPES = ("cgroup", "cgroup2")
NETNS_DIR = Path("/run/netns")  # iproute2's named network namespaces


def run(*argv: str, check: bool = True) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


# --- processes ---------------------------------------------------------------------------------


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/<pid>/stat): tells a pid reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def terminate(pids: Iterable[int], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL whatever still runs after `grace` seconds; waits until all are gone."""
    alive = [pid for pid in set(pids) if pid != os.getpid()]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            alive = [pid for pid in alive if _exists(pid)]
            time.sleep(0.1)
        if not alive:
            return


def _exists(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap our own children, or they linger as zombies
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- network namespace, veth, routes -----------------------------------------------------------


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def netns_pids(name: str) -> list[int]:
    if not netns_path(name).exists():
        return []
    return [int(p) for p in run("ip", "netns", "pids", name, check=False).split()]


def delete_netns(name: str) -> None:
    terminate(netns_pids(name))
    if netns_path(name).exists():
        run("ip", "netns", "delete", name)


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def delete_link(name: str) -> None:
    if link_exists(name):
        run("ip", "link", "delete", name, check=False)


def delete_route(destination: str, device: str) -> None:
    if run("ip", "route", "show", destination, "dev", device, check=False).strip():
        run("ip", "route", "delete", destination, "dev", device, check=False)


# --- cgroups (v1 hybrid here: one directory per hierarchy) -------------------------------------


def cgroup_mounts(mountinfo: str | None = None) -> list[Path]:
    text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        if fstype in CGROUP_MOUNT_TYPES:
            mounts.append(Path(_unescape(fields[4])))
    return mounts


def create_cgroup(root: str) -> None:
    """`root` in every hierarchy; cpuset needs cpus and mems before any task can join it."""
    for mount in cgroup_mounts():
        path = mount / root.lstrip("/")
        path.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (path / name).exists() and not (path / name).read_text().strip():
                (path / name).write_text((mount / name).read_text())


def cgroup_pids(root: str) -> set[int]:
    pids: set[int] = set()
    for mount in cgroup_mounts():
        base = mount / root.lstrip("/")
        for procs in base.rglob("cgroup.procs") if base.exists() else ():
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in procs.read_text().split())
    return pids


def remove_cgroup(root: str) -> None:
    terminate(cgroup_pids(root))
    for mount in cgroup_mounts():
        base = mount / root.lstrip("/")
        if not base.exists():
            continue
        for directory in sorted((p for p in base.rglob("*") if p.is_dir()), key=_depth, reverse=True):
            _rmdir_when_empty(directory)
        _rmdir_when_empty(base)


def _rmdir_when_empty(directory: Path) -> None:
    # A cgroup whose last task just died may stay busy for a moment.
    for _ in range(50):
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    directory.rmdir()


def _depth(path: Path) -> int:
    return len(path.parts)


# --- mounts and sysctls ------------------------------------------------------------------------


def mounts_under(directory: Path, mountinfo: str | None = None) -> list[Path]:
    """Mount points strictly below `directory`, deepest first."""
    prefix = str(directory.resolve()).rstrip("/") + "/"
    return [p for p in mounts_at_or_under(directory, mountinfo) if str(p).startswith(prefix)]


def mounts_at_or_under(directory: Path, mountinfo: str | None = None) -> list[Path]:
    text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    top = str(directory.resolve()).rstrip("/")
    points = {Path(_unescape(line.split()[4])) for line in text.splitlines()}
    return sorted(
        (p for p in points if str(p) == top or str(p).startswith(top + "/")), key=_depth, reverse=True
    )


def unmount_under(directory: Path) -> None:
    for _ in range(5):  # stacked mounts show up once per layer
        points = mounts_under(directory)
        if not points:
            return
        for point in points:
            run("umount", "--lazy", str(point), check=False)


def read_sysctl(name: str) -> str:
    return Path("/proc/sys", *name.split(".")).read_text().strip()


def write_sysctl(name: str, value: str) -> None:
    Path("/proc/sys", *name.split(".")).write_text(value)


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    return field.encode().decode("unicode_escape")


def ns_exec(netns: str, argv: Sequence[str]) -> list[str]:
    """`argv` run inside the node's network namespace only (not `ip netns exec`, which also makes a
    private mount namespace: kubelet's volume mounts must stay visible to containerd)."""
    return ["nsenter", f"--net={netns_path(netns)}", "--", *argv]
