"""The pieces of `make images` that decide what an image is, without building one: the mmdebstrap
command (no mirror of ours in it), the images' configurations, and the runc configuration the image
test runs them with (a pod's hardening)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from flashsale_dev.image_build import bundle, debian, recipes
from flashsale_dev.paths import versions

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


MANIFESTS = Path(__file__).resolve().parents[2] / "manifests/images"


def containerfile_stages(path: Path) -> dict[str, dict[str, str]]:
    """Stage name (or its index) -> the last USER/ENTRYPOINT/CMD of that stage, inheriting from its
    FROM stage, with continuation lines joined."""
    text = path.read_text().replace("\\\n", " ")
    stages: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "FROM":
            parent, _, name = rest.partition(" AS ")
            current = dict(stages.get(parent.strip(), {}))
            stages[name.strip() or str(len(stages))] = current
        elif word in {"USER", "ENTRYPOINT", "CMD", "ENV"}:
            current[word] = " ".join(rest.split())
    return stages


def test_the_containerfiles_say_what_the_builder_builds() -> None:
    product = containerfile_stages(MANIFESTS / "flashsale/Containerfile")
    for ref, config in recipes.product_configs("0.1.0").items():
        stage = product[ref.split("/")[1].split(":")[0]]
        assert stage["USER"] == config.user
        assert stage["ENTRYPOINT"] == '["' + '", "'.join(config.entrypoint) + '"]'
        assert stage.get("CMD") == ('["' + '", "'.join(config.cmd) + '"]' if config.cmd else None)
        for name, value in config.env.items():
            assert f"{name}={value}" in stage["ENV"]
    (kafka,) = recipes.kafka_config("0.1.0", versions()["KAFKA_VERSION"]).values()
    kafka_stage = containerfile_stages(MANIFESTS / "kafka/Containerfile")["0"]
    assert kafka_stage["USER"] == kafka.user
    assert kafka_stage["ENTRYPOINT"] == f'["{kafka.entrypoint[0]}"]'
    for name, value in kafka.env.items():
        assert f"{name}={value}" in kafka_stage["ENV"]
    (pause,) = recipes.pause_config("0.1.0").values()
    pause_stage = list(containerfile_stages(MANIFESTS / "pause/Containerfile").values())[-1]
    assert pause_stage["USER"] == pause.user
    assert pause_stage["ENTRYPOINT"] == '["/pause"]'
