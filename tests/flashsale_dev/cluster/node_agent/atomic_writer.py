"""The kubelet's AtomicWriter: a volume's files replaced all at once, under a live bind mount.

The volume directory holds a timestamped data directory, a `..data` symlink to it, and one symlink
per top-level name (`key -> ..data/key`). An update writes a new data directory and renames a new
`..data` over the old one: a reader sees the old set of files or the new one, never a mix, and since
the volume *directory* is what is bind-mounted into the pod, the change shows through the mount.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DATA = "..data"


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int = 0o644


Payload = Mapping[str, FileProjection]  # relative path -> content


class PayloadError(ValueError):
    """A path that would escape the volume or clash with the writer's own names."""


def check_path(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or path.startswith(".."):
        raise PayloadError(f"invalid path {path!r}: must be relative, without '..'")


def _current(volume: Path) -> Path | None:
    link = volume / DATA
    return volume / os.readlink(link) if link.is_symlink() else None


def _same(directory: Path, payload: Payload) -> bool:
    files = {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}
    if files != set(payload):
        return False
    for path, projection in payload.items():
        on_disk = directory / path
        if on_disk.read_bytes() != projection.data or (on_disk.stat().st_mode & 0o7777) != projection.mode:
            return False
    return True


def write_payload(volume: Path, payload: Payload) -> bool:
    """Make `volume` show exactly `payload`; returns whether anything changed."""
    for path in payload:
        check_path(path)
    volume.mkdir(parents=True, exist_ok=True)
    old = _current(volume)
    if old is not None and old.is_dir() and _same(old, payload):
        return False
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    new = Path(tempfile.mkdtemp(prefix=stamp, dir=volume))
    new.chmod(0o755)
    for path, projection in payload.items():
        target = new / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(projection.data)
        target.chmod(projection.mode)
    swap = volume / "..data_tmp"
    swap.unlink(missing_ok=True)
    swap.symlink_to(new.name)
    swap.rename(volume / DATA)  # rename(2) over the old link: the atomic step
    visible = {path.split("/", 1)[0] for path in payload}
    for name in visible:
        link = volume / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA}/{name}")
    for entry in volume.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.is_symlink() and entry.name not in visible:
            entry.unlink()
    if old is not None and old.is_dir():
        shutil.rmtree(old)
    return True
