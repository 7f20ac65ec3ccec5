"""The OCI writer behind `make images`: the same files give the same digests, and what it writes is a
valid image layout (layers in order, a config a runtime can use, one manifest per tag)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest

from flashsale_dev.image_build import oci

pytestmark = pytest.mark.unit

EPOCH = 1_700_000_000


def make_tree(root: Path, mtime: int) -> Path:
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "usr/local/bin/tool").write_text("#!/bin/sh\necho hi\n")
    (root / "usr/local/bin/tool").chmod(0o755)
    (root / "etc").mkdir()
    (root / "etc/conf").write_text("a=1\n")
    (root / "etc/link").symlink_to("conf")
    (root / "var/lib/data").mkdir(parents=True)
    for path in root.rglob("*"):
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


def test_the_same_files_touched_at_other_times_give_the_same_layer_digest(tmp_path: Path) -> None:
    first = oci.layer_from_dir(make_tree(tmp_path / "a", EPOCH + 10), tmp_path / "a.tgz", EPOCH, "layer")
    second = oci.layer_from_dir(make_tree(tmp_path / "b", EPOCH + 99_999), tmp_path / "b.tgz", EPOCH, "layer")
    assert first == second
    assert (tmp_path / "a.tgz").read_bytes() == (tmp_path / "b.tgz").read_bytes()


def test_a_changed_file_changes_the_digest(tmp_path: Path) -> None:
    first = oci.layer_from_dir(make_tree(tmp_path / "a", EPOCH), tmp_path / "a.tgz", EPOCH, "layer")
    changed = make_tree(tmp_path / "b", EPOCH)
    (changed / "etc/conf").write_text("a=2\n")
    assert oci.layer_from_dir(changed, tmp_path / "b.tgz", EPOCH, "layer").diff_id != first.diff_id


def test_layer_entries_are_sorted_root_owned_and_clamped_to_the_epoch(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", EPOCH + 5_000)
    owners = {"var/lib/data": (10001, 10001)}
    layer = oci.layer_from_dir(tree, tmp_path / "layer.tgz", EPOCH, "layer", owners)
    with tarfile.open(tmp_path / "layer.tgz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {m.mtime for m in members} == {EPOCH}
    assert {(m.name, m.uid, m.gid) for m in members if m.uid or m.gid} == {("var/lib/data", 10001, 10001)}
    assert {m.uname for m in members} == {""}
    assert next(m for m in members if m.name == "etc/link").linkname == "conf"
    assert next(m for m in members if m.name == "usr/local/bin/tool").mode == 0o755
    uncompressed = gzip.decompress((tmp_path / "layer.tgz").read_bytes())
    assert layer.diff_id == "sha256:" + hashlib.sha256(uncompressed).hexdigest()


def test_gzip_carries_no_timestamp_or_file_name(tmp_path: Path) -> None:
    oci.layer_from_dir(make_tree(tmp_path / "tree", EPOCH), tmp_path / "layer.tgz", EPOCH, "layer")
    header = (tmp_path / "layer.tgz").read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # MTIME
    assert header[3] & 0x08 == 0  # no FNAME


def test_a_tarball_is_repacked_in_its_own_order_through_the_filter(tmp_path: Path) -> None:
    source = tmp_path / "rootfs.tar"
    with tarfile.open(source, "w") as tar:
        for name, kind in (
            ("./etc", tarfile.DIRTYPE),
            ("./dev/null", tarfile.CHRTYPE),
            ("./etc/b", tarfile.REGTYPE),
        ):
            info = tarfile.TarInfo(name)
            info.type, info.mtime, info.uname = kind, EPOCH + 1, "root"
            tar.addfile(info)

    def keep(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
        member.name = member.name.removeprefix("./")
        return None if member.ischr() else member

    oci.layer_from_tar(source, tmp_path / "base.tgz", EPOCH, "base", keep)
    with tarfile.open(tmp_path / "base.tgz") as tar:
        assert [(m.name, m.mtime, m.uname) for m in tar.getmembers()] == [
            ("etc", EPOCH, ""),
            ("etc/b", EPOCH, ""),
        ]


def build_archive(tmp_path: Path, name: str) -> tuple[Path, list[oci.BuiltImage], list[oci.Layer]]:
    base = oci.layer_from_dir(
        make_tree(tmp_path / f"{name}-base", EPOCH), tmp_path / f"{name}-1.tgz", EPOCH, "base"
    )
    own_tree = tmp_path / f"{name}-own"
    (own_tree / "app").mkdir(parents=True)
    (own_tree / "app/main.py").write_text("print('hi')\n")
    own = oci.layer_from_dir(own_tree, tmp_path / f"{name}-2.tgz", EPOCH, "own")
    files = {base.blob.digest: tmp_path / f"{name}-1.tgz", own.blob.digest: tmp_path / f"{name}-2.tgz"}
    tags = [
        oci.Tagged("example/web:1.0", oci.ImageConfig("10001:10001", ("web",), ("serve",), {"A": "1"})),
        oci.Tagged("example/worker:1.0", oci.ImageConfig("10001:10001", ("python3", "-m", "worker"))),
    ]
    archive = tmp_path / f"{name}.oci.tar"
    return archive, oci.write_archive(archive, [base, own], files, tags, EPOCH), [base, own]


def read_blob(tar: tarfile.TarFile, digest: str) -> bytes:
    member = tar.extractfile("blobs/sha256/" + digest.removeprefix("sha256:"))
    assert member is not None
    return member.read()


def test_two_archives_of_the_same_input_are_identical(tmp_path: Path) -> None:
    first, images, _ = build_archive(tmp_path, "one")
    second, again, _ = build_archive(tmp_path, "two")
    assert images == again
    assert first.read_bytes() == second.read_bytes()


def test_the_archive_is_an_image_layout_with_one_manifest_per_tag(tmp_path: Path) -> None:
    archive, images, layers = build_archive(tmp_path, "image")
    with tarfile.open(archive) as tar:
        assert json.loads(read_blob_named(tar, "oci-layout")) == {"imageLayoutVersion": "1.0.0"}
        index = json.loads(read_blob_named(tar, "index.json"))
        refs = [m["annotations"][oci.REF_NAME] for m in index["manifests"]]
        assert refs == ["example/web:1.0", "example/worker:1.0"]
        web = json.loads(read_blob(tar, index["manifests"][0]["digest"]))
        assert [layer["digest"] for layer in web["layers"]] == [layer.blob.digest for layer in layers]
        config = json.loads(read_blob(tar, web["config"]["digest"]))
    assert images[0].manifest.digest == index["manifests"][0]["digest"]
    assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer in layers]
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert [h["created_by"] for h in config["history"]] == ["base", "own"]
    assert config["config"]["User"] == "10001:10001"
    assert config["config"]["Entrypoint"] == ["web"]
    assert config["config"]["Cmd"] == ["serve"]
    assert config["config"]["Env"] == ["A=1"]


def test_tags_share_layers_and_differ_in_config(tmp_path: Path) -> None:
    _, (web, worker), _ = build_archive(tmp_path, "image")
    assert web.config != worker.config


def read_blob_named(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.extractfile(name)
    assert member is not None
    return member.read()
