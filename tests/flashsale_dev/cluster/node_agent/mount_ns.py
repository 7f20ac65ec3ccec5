"""Run a container's command in a private mount namespace with the pod's files and volumes mounted.

`python -I mount_ns.py PLAN_JSON ARGV...` (run by path, so only the standard library is imported):
unshare(CLONE_NEWNS | CLONE_NEWUTS), set the plan's `hostname` (the pod's, as in a real pod: it
resolves through the pod's /etc/hosts, the host's name would not), make every mount private (so
nothing propagates back to the host), bind each `{"source", "target", "read_only"}` of the plan in
turn, show the plan's `image` paths again where a volume covers them (locally the image's files are
the host's: a checkout under /tmp must not vanish under an emptyDir at /tmp), chdir to the plan's
`cwd`, then exec ARGV.
The exec keeps the pid (the agent tracks the real process), the session and PR_SET_PDEATHSIG; the
namespace, and every mount in it, dies with the last process inside it.

A target that does not exist on the host needs a mount point, and the host's directories must not
change: the nearest existing ancestor is *mirrored*. A tmpfs (under the plan's `staging` dir) gets
every entry of that directory - directories and files bind-mounted back, symlinks copied - plus the
missing path, and is moved over the ancestor. Reads and writes of existing paths still reach the
host; only entries the host adds to that directory later are not seen. For the root directory the
mirror cannot be mounted over `/`, so the process chroots into it instead.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


def nearest_existing(path: str, exists: Callable[[str], bool]) -> str:
    """The deepest ancestor of the absolute `path` that exists (`/` at worst)."""
    current = os.path.dirname(path)
    while current != "/" and not exists(current):
        current = os.path.dirname(current)
    return current


def mount_order(binds: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Parents before children, so /data/cache is mounted inside the /data volume, as the kubelet does."""
    return sorted(binds, key=lambda bind: str(bind["target"]).rstrip("/").count("/"))


def covered(paths: Sequence[str], targets: Sequence[str]) -> list[str]:
    """The `paths` strictly inside some mount target: a volume there would hide them."""
    return [p for p in paths if any(p.startswith(t.rstrip("/") + "/") for t in targets)]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def arg(text: str | None) -> bytes | None:
        return text.encode() if text is not None else None

    result = _libc.mount(arg(source), arg(target), arg(fstype), ctypes.c_ulong(flags), arg(data))
    _check(result, f"mount {source} on {target}")


def _mirror(directory: str, staging: str) -> str:
    """A tmpfs at `staging` showing every entry of `directory`; returns `staging`."""
    os.makedirs(staging, exist_ok=True)
    info = os.stat(directory)
    _mount("tmpfs", staging, "tmpfs", 0, f"mode={info.st_mode & 0o7777:o}")
    os.chown(staging, info.st_uid, info.st_gid)
    for entry in os.scandir(directory):
        inside = os.path.join(staging, entry.name)
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), inside)
        elif entry.is_dir():
            os.mkdir(inside)
            _mount(entry.path, inside, None, MS_BIND | MS_REC)
        else:  # files, sockets, fifos, devices: a bind mount needs a file to sit on
            os.close(os.open(inside, os.O_CREAT | os.O_WRONLY, 0o600))
            _mount(entry.path, inside, None, MS_BIND)
    return staging


def _create(path: str, is_dir: bool) -> None:
    os.makedirs(path if is_dir else os.path.dirname(path), exist_ok=True)
    if not is_dir:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def _make_room(target: str, is_dir: bool, staging: str, ours: set[str]) -> None:
    """Create `target` inside a mirror of its nearest existing ancestor (see the module's docstring).

    `ours` holds the directories already on a mirror's tmpfs: those take new entries directly.
    """
    ancestor = nearest_existing(target, os.path.lexists)
    created = [target if is_dir else os.path.dirname(target)]
    while os.path.dirname(created[-1]) != ancestor:
        created.append(os.path.dirname(created[-1]))
    if ancestor in ours:
        _create(target, is_dir)
        ours.update(created)
        return
    mirror = _mirror(ancestor, staging)
    _create(os.path.join(mirror, os.path.relpath(target, ancestor)), is_dir)
    ours.update([ancestor, *created])
    if ancestor == "/":
        os.chroot(mirror)  # a mount over "/" would not be seen: lookups start at the process's root
        os.chdir("/")
    else:
        _mount(mirror, ancestor, None, MS_MOVE)


def _pin(path: str) -> str:
    """A name for `path` that no later mount can hide: its open O_PATH descriptor in /proc/self/fd."""
    return f"/proc/self/fd/{os.open(path, os.O_PATH)}"  # never closed: the exec closes it (CLOEXEC)


def set_up(plan: Mapping[str, Any]) -> None:
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare(CLONE_NEWNS | CLONE_NEWUTS)")
    if plan.get("hostname"):
        name = str(plan["hostname"]).encode()
        _check(_libc.sethostname(name, ctypes.c_size_t(len(name))), "sethostname")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here may propagate to the host
    binds = plan.get("binds") or []
    assert isinstance(binds, list)
    binds = mount_order(binds)
    # Pinned before the first mount: an emptyDir mounted over /tmp would hide the pod's files, its
    # staging and its working directory when the node's state directory is under /tmp.
    sources = [_pin(str(bind["source"])) for bind in binds]
    os.makedirs(str(plan["staging"]), exist_ok=True)
    staging, cwd = _pin(str(plan["staging"])), _pin(str(plan["cwd"]))
    targets = [os.path.normpath(str(bind["target"])) for bind in binds]
    image = {path: _pin(path) for path in covered(plan.get("image") or [], targets)}
    ours: set[str] = set()
    for index, (bind, source) in enumerate(zip(binds, sources, strict=True)):
        target = os.path.realpath(str(bind["target"]))  # after the mounts before it, as they resolve it
        if not os.path.lexists(target):
            _make_room(target, os.path.isdir(source), os.path.join(staging, f"mirror-{index}"), ours)
        _mount(source, target, None, MS_BIND | MS_REC)
        if bind.get("read_only"):
            _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    for path, pinned in image.items():  # the image's files over the volume that covered them
        os.makedirs(path, exist_ok=True)
        _mount(pinned, path, None, MS_BIND | MS_REC)
    os.chdir(cwd)


def main(argv: list[str]) -> int:
    plan, command = json.loads(argv[0]), argv[1:]
    try:
        set_up(plan)
    except OSError as error:
        print(f"node agent: cannot set up the pod's mounts: {error}", file=sys.stderr, flush=True)
        return 128  # what the kubelet reports when the runtime could not start the container
    try:
        os.execvp(command[0], command)  # noqa: S606 - the container's own command, as a runtime runs it
    except OSError as error:
        print(f"node agent: exec {command[0]}: {error}", file=sys.stderr, flush=True)
    return 128


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
