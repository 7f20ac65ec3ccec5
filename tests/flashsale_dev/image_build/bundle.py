"""An image from an OCI archive as a runc bundle, run the way the operator's pods run it.

`unpack` applies the image's layers in order into `bundle/rootfs`; `runtime_spec` is an OCI runtime
configuration with the image's user, env and command and the hardening of the pods: read-only root,
no capabilities, no new privileges, its own namespaces (network too: only a loopback), writable
paths only as tmpfs mounts (the pods' emptyDirs). The images have no whiteouts (each layer only
adds), so unpacking is plain extraction.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flashsale_dev.image_build import oci


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    file = tar.extractfile(name)
    if file is None:
        raise FileNotFoundError(name)
    return file.read()


def _blob(tar: tarfile.TarFile, digest: str) -> bytes:
    return _member(tar, "blobs/sha256/" + digest.removeprefix("sha256:"))


def image_config(archive: Path, ref: str) -> dict[str, Any]:
    """The config of `ref` (its `config` object holds User, Entrypoint, Cmd, Env, WorkingDir)."""
    with tarfile.open(archive) as tar:
        manifest = _manifest(tar, ref)
        config: dict[str, Any] = json.loads(_blob(tar, manifest["config"]["digest"]))
    return config


def _manifest(tar: tarfile.TarFile, ref: str) -> dict[str, Any]:
    index = json.loads(_member(tar, "index.json"))
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get(oci.REF_NAME) == ref:
            manifest: dict[str, Any] = json.loads(_blob(tar, entry["digest"]))
            return manifest
    raise KeyError(f"{ref} is not in the archive")


def unpack(archive: Path, ref: str, rootfs: Path) -> None:
    rootfs.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        for layer in _manifest(tar, ref)["layers"]:
            member = tar.extractfile("blobs/sha256/" + layer["digest"].removeprefix("sha256:"))
            assert member is not None
            with tarfile.open(fileobj=member, mode="r|gz") as layer_tar:
                layer_tar.extractall(rootfs, filter="fully_trusted")  # noqa: S202 - our own layers; keeps /tmp sticky


def _numeric_user(user: str) -> dict[str, int]:
    uid, _, gid = user.partition(":")
    return {"uid": int(uid), "gid": int(gid or uid)}


def runtime_spec(
    config: Mapping[str, Any],
    *,
    args: Sequence[str] | None = None,
    tmpfs: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    command: Sequence[str] | None = None,
    rootfs: Path | None = None,
    binds: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    """Like a pod's container: `command` replaces the Entrypoint, `args` the Cmd, `env` adds to Env;
    `tmpfs`: path -> mount options (default: a writable /tmp); `rootfs`: an unpacked image shared
    by several bundles (read-only, so they cannot change it), else the bundle's own `rootfs`;
    `binds`: path in the container -> host directory (a volume)."""
    image = config["config"]
    process_env = [*image.get("Env", []), *(f"{k}={v}" for k, v in (env or {}).items())]
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
    ]
    for path, options in sorted((tmpfs or {"/tmp": "mode=1777"}).items()):
        mounts.append(
            {"destination": path, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", options]}
        )
    for path, host in sorted((binds or {}).items()):
        mounts.append({"destination": path, "type": "bind", "source": str(host), "options": ["rbind", "rw"]})
    no_capabilities: dict[str, list[str]] = {
        k: [] for k in ("bounding", "effective", "permitted", "inheritable", "ambient")
    }
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": _numeric_user(image["User"]),
            "args": [
                *(image.get("Entrypoint", []) if command is None else command),
                *(image.get("Cmd", []) if args is None else args),
            ],
            "env": process_env,
            "cwd": image.get("WorkingDir") or "/",
            "capabilities": no_capabilities,
            "noNewPrivileges": True,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        },
        "root": {"path": str(rootfs or "rootfs"), "readonly": True},
        "hostname": "image-test",
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def write_bundle(bundle: Path, spec: Mapping[str, Any]) -> None:
    (bundle / "config.json").write_text(json.dumps(spec, indent=1))
