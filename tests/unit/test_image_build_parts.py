"""The pieces of `make images` that decide what an image is, without building one: the mmdebstrap
command (no mirror of ours in it), the images' configurations, and the runc configuration the image
test runs them with (a pod's hardening)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from flashsale_dev.image_build import bundle, debian, recipes

pytestmark = pytest.mark.unit


def test_mmdebstrap_uses_the_hosts_apt_sources_and_drops_documentation() -> None:
    argv = debian.mmdebstrap_argv(["python3"], Path("/w/packages.txt"), Path("/w/rootfs.tar"), ["/etc/x"])
    assert argv[-2:] == ["bookworm", "/w/rootfs.tar"]  # a suite and no mirror: the host's sources
    assert not any("://" in arg for arg in argv)
    assert "--variant=essential" in argv
    assert "--include=python3" in argv
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in argv
    hooks = " ".join(arg for arg in argv if arg.startswith("--customize-hook="))
    assert "flashsale:x:10001:10001:" in hooks
    assert 'rm -f "$1/etc/x"' in hooks
    assert ': > "$1/etc/resolv.conf"' in hooks


def test_device_nodes_and_the_root_entry_stay_out_of_the_base_layer() -> None:
    device = tarfile.TarInfo("./dev/null")
    device.type = tarfile.CHRTYPE
    root = tarfile.TarInfo("./")
    root.type = tarfile.DIRTYPE
    link = tarfile.TarInfo("./usr/bin/b")
    link.type, link.linkname = tarfile.LNKTYPE, "./usr/bin/a"
    assert debian.keep_member(device) is None
    assert debian.keep_member(root) is None
    kept = debian.keep_member(link)
    assert kept is not None
    assert (kept.name, kept.linkname) == ("usr/bin/b", "usr/bin/a")


def test_every_image_runs_as_a_numeric_non_root_user() -> None:
    configs = {
        **recipes.product_configs("9.9.9"),
        **recipes.kafka_config("9.9.9", "4.3.1"),
        **recipes.pause_config("9.9.9"),
    }
    assert set(configs) == {
        "flashsale/operator:9.9.9",
        "flashsale/gateway:9.9.9",
        "flashsale/consumer:9.9.9",
        "flashsale/kafka:9.9.9",
        "flashsale/pause:9.9.9",
    }
    for ref, config in configs.items():
        uid, _, gid = config.user.partition(":")
        assert uid.isdigit(), ref
        assert gid.isdigit(), ref
        assert int(uid) != 0, ref


def test_the_python_images_write_no_bytecode_and_log_unbuffered() -> None:
    for config in recipes.product_configs("9.9.9").values():
        assert config.env["PYTHONUNBUFFERED"] == "1"
        assert config.env["PYTHONDONTWRITEBYTECODE"] == "1"


IMAGE = {"config": {"User": "10001:10001", "Entrypoint": ["flashsale"], "Cmd": ["gateway"], "Env": ["A=1"]}}


def test_the_runtime_spec_is_a_hardened_pod() -> None:
    spec = bundle.runtime_spec(IMAGE)
    process = spec["process"]
    assert process["user"] == {"uid": 10001, "gid": 10001}
    assert process["args"] == ["flashsale", "gateway"]
    assert process["noNewPrivileges"] is True
    assert all(caps == [] for caps in process["capabilities"].values())
    assert spec["root"]["readonly"] is True
    assert {"type": "network"} in spec["linux"]["namespaces"]
    assert [m["destination"] for m in spec["mounts"] if m["source"] == "tmpfs"][-1] == "/tmp"


def test_command_and_args_replace_entrypoint_and_cmd_like_a_pods() -> None:
    spec = bundle.runtime_spec(IMAGE, command=["python3", "-c", "pass"], args=[], env={"B": "2"})
    assert spec["process"]["args"] == ["python3", "-c", "pass"]
    assert spec["process"]["env"] == ["A=1", "B=2"]
    assert bundle.runtime_spec(IMAGE, args=["gateway", "--help"])["process"]["args"] == [
        "flashsale",
        "gateway",
        "--help",
    ]
