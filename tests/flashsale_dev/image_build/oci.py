"""A small OCI image writer: layers, config, manifests and the archive, all byte-for-byte reproducible.

Reproducible means the same input files give the same digests on any machine and any day: tar
entries in sorted order, mtimes clamped to SOURCE_DATE_EPOCH, owners numeric (root unless a path is
given an owner), no user or group names, gzip without a timestamp or file name. Nothing here runs a
process; the writers take paths and return digests.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

MEDIA_LAYER: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
MEDIA_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX: Final = "application/vnd.oci.image.index.v1+json"
REF_NAME: Final = "org.opencontainers.image.ref.name"
CONTAINERD_NAME: Final = "io.containerd.image.name"
# Level 1: a third of level 6's time for about 10% more bytes (a cold build is on make test's path).
GZIP_LEVEL: Final = 1
CHUNK: Final = 1 << 20

# A tar member rewritten on its way into a layer; None drops it.
MemberFilter = Callable[[tarfile.TarInfo], tarfile.TarInfo | None]


@dataclass(frozen=True)
class Blob:
    """A content-addressed file: its digest (`sha256:...`) and size in bytes."""

    digest: str
    size: int

    def descriptor(self, media_type: str, **extra: Any) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class Layer:
    """A compressed layer blob and the digest of its uncompressed tar (the config's diff_id)."""

    blob: Blob
    diff_id: str
    comment: str

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.blob.digest,
            "size": self.blob.size,
            "diff_id": self.diff_id,
            "comment": self.comment,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Layer:
        return cls(Blob(data["digest"], data["size"]), data["diff_id"], data["comment"])


@dataclass(frozen=True)
class ImageConfig:
    """What a runtime needs besides the layers (the OCI config's `config` object)."""

    user: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str = "/"
    labels: Mapping[str, str] = field(default_factory=dict)


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def blob_of(data: bytes) -> Blob:
    return Blob("sha256:" + hashlib.sha256(data).hexdigest(), len(data))


class _Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


class _HashingWriter(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to `sink` (if any)."""

    def __init__(self, sink: _Sink | None = None) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self.sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.sha.update(chunk)
        self.size += len(chunk)
        if self.sink is not None:
            self.sink.write(chunk)
        return len(chunk)

    def blob(self) -> Blob:
        return Blob("sha256:" + self.sha.hexdigest(), self.size)


def normalized(info: tarfile.TarInfo, epoch: int) -> tarfile.TarInfo:
    """Clamp the mtime, drop names of users and groups and the PAX extras (atime, ctime)."""
    info.mtime = min(int(info.mtime), epoch)
    info.uname = info.gname = ""
    info.pax_headers = {}
    return info


def walk_members(
    root: Path, epoch: int, owners: Mapping[str, tuple[int, int]]
) -> Iterator[tuple[tarfile.TarInfo, Path]]:
    """Every path under `root` as a tar member (sorted, parents first); `owners` maps a path inside
    the image (`var/lib/kafka`) to its uid/gid, root otherwise."""
    paths = sorted(p for p in root.rglob("*"))
    for path in paths:
        name = path.relative_to(root).as_posix()
        st = path.lstat()
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.mtime = st.st_mtime_ns // 1_000_000_000
        info.uid, info.gid = owners.get(name, (0, 0))
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            info.size = st.st_size
        else:
            raise ValueError(f"{path}: only files, directories and symlinks go into a layer")
        yield normalized(info, epoch), path


def _write_layer(out: Path, comment: str, fill: Callable[[tarfile.TarFile], None]) -> Layer:
    """Stream a tar through gzip into `out`, hashing both sides on the way."""
    with out.open("wb") as raw:
        compressed = _HashingWriter(raw)
        with gzip.GzipFile(
            filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=GZIP_LEVEL
        ) as gz:
            uncompressed = _HashingWriter(gz)
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                fill(tar)
    return Layer(compressed.blob(), uncompressed.blob().digest, comment)


def layer_from_dir(
    root: Path, out: Path, epoch: int, comment: str, owners: Mapping[str, tuple[int, int]] | None = None
) -> Layer:
    def fill(tar: tarfile.TarFile) -> None:
        for info, path in walk_members(root, epoch, owners or {}):
            if info.isreg():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)

    return _write_layer(out, comment, fill)


def layer_from_tar(source: Path, out: Path, epoch: int, comment: str, keep: MemberFilter) -> Layer:
    """Re-pack a tarball (mmdebstrap's) member by member in its own order (hard links stay after
    their targets), through `keep`, normalized."""

    def fill(tar: tarfile.TarFile) -> None:
        with tarfile.open(source, mode="r|*") as src:
            for member in src:
                info = keep(member)
                if info is None:
                    continue
                info = normalized(info, epoch)
                tar.addfile(info, src.extractfile(member) if info.isreg() else None)

    return _write_layer(out, comment, fill)


def config_json(config: ImageConfig, layers: Sequence[Layer], epoch: int) -> bytes:
    created = _rfc3339(epoch)
    body: dict[str, Any] = {
        "User": config.user,
        "Entrypoint": list(config.entrypoint),
        "Env": [f"{k}={v}" for k, v in config.env.items()],
        "WorkingDir": config.working_dir,
        "Labels": dict(config.labels),
    }
    if config.cmd:
        body["Cmd"] = list(config.cmd)
    return canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": body,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [{"created": created, "created_by": layer.comment} for layer in layers],
        }
    )


def manifest_json(config: Blob, layers: Sequence[Layer], annotations: Mapping[str, str]) -> bytes:
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config.descriptor(MEDIA_CONFIG),
            "layers": [layer.blob.descriptor(MEDIA_LAYER) for layer in layers],
            "annotations": dict(annotations),
        }
    )


def index_json(manifests: Iterable[tuple[Blob, str]]) -> bytes:
    """The layout's index: one manifest per reference (`flashsale/gateway:0.1.0`)."""
    entries = [
        blob.descriptor(MEDIA_MANIFEST, annotations={REF_NAME: ref, CONTAINERD_NAME: ref})
        for blob, ref in manifests
    ]
    return canonical_json({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": entries})


def _rfc3339(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Tagged:
    """One reference of an image: its name with tag and its own config (a tag may differ in Cmd)."""

    ref: str
    config: ImageConfig


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    manifest: Blob
    config: Blob


def write_archive(
    out: Path, layers: Sequence[Layer], layer_files: Mapping[str, Path], tags: Sequence[Tagged], epoch: int
) -> list[BuiltImage]:
    """An OCI archive (a tar of an image layout) holding every tag; layer blobs are read from
    `layer_files` (digest -> path), shared between tags."""
    blobs: dict[str, bytes | Path] = {layer.blob.digest: layer_files[layer.blob.digest] for layer in layers}
    built: list[BuiltImage] = []
    for tag in tags:
        config_bytes = config_json(tag.config, layers, epoch)
        config = blob_of(config_bytes)
        manifest_bytes = manifest_json(config, layers, {REF_NAME: tag.ref})
        manifest = blob_of(manifest_bytes)
        blobs[config.digest], blobs[manifest.digest] = config_bytes, manifest_bytes
        built.append(BuiltImage(tag.ref, manifest, config))
    entries: dict[str, bytes | Path] = {
        "oci-layout": canonical_json({"imageLayoutVersion": "1.0.0"}),
        "index.json": index_json((image.manifest, image.ref) for image in built),
    }
    entries.update({"blobs/sha256/" + digest.removeprefix("sha256:"): data for digest, data in blobs.items()})
    _write_plain_tar(out, entries, epoch)
    return built


def _write_plain_tar(out: Path, entries: Mapping[str, bytes | Path], epoch: int) -> None:
    tmp = out.with_name(out.name + ".part")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, epoch
            tar.addfile(info)
        for name in sorted(entries):
            data = entries[name]
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = 0o644, epoch
            if isinstance(data, Path):
                info.size = data.stat().st_size
                with data.open("rb") as f:
                    tar.addfile(info, f)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
