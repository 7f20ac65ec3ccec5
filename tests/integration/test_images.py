"""The built images are reproducible and run as the operator's pods run them: unpacked from their OCI
archives (built by `make setup`, or here through the builder's cache) into a runc bundle with the
image's numeric non-root user, a read-only root, no capabilities and no new privileges, in
namespaces of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flashsale_dev.image_build import bundle
from flashsale_dev.image_build.build import Context, build_all, repo_root
from flashsale_dev.image_build.oci import REF_NAME
from flashsale_dev.paths import require_binary
from flashsale_dev.waiting import wait_for
from flashsale_sale import __version__

pytestmark = pytest.mark.integration

RUN_TIMEOUT = 300  # seconds; Python's first start on a busy machine


@pytest.fixture(scope="module")
def archives() -> dict[str, Path]:
    """ref -> OCI archive (a no-op when `make images` already built this commit)."""
    ctx = Context(repo_root(), __version__)
    images, _ = build_all(ctx)
    return {image["ref"]: ctx.cache / image["archive"] for image in images}


def test_a_second_build_gives_the_same_digests(archives: dict[str, Path], tmp_path: Path) -> None:
    """Reproducible: every archive built again into an empty cache (only the Debian bases, whose two
    builds were compared once by hand as docs/images.md says, and the downloaded wheels are shared)."""
    ctx = Context(repo_root(), __version__)
    again = Context(repo_root(), __version__, cache=tmp_path / "images")
    for shared in ("bases", "layers", "wheels"):
        link_tree(ctx.cache / shared, again.cache / shared)
    images, built = build_all(again)
    assert built == 3
    assert {image["ref"]: image["digest"] for image in images} == {
        ref: digest_in(archive, ref) for ref, archive in archives.items()
    }


def link_tree(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for path in source.iterdir():
        try:
            os.link(path, target / path.name)
        except OSError:  # another file system
            shutil.copy2(path, target / path.name)


def digest_in(archive: Path, ref: str) -> str:
    with tarfile.open(archive) as tar:
        index = tar.extractfile("index.json")
        assert index is not None
        entries = json.load(index)["manifests"]
    return next(str(e["digest"]) for e in entries if e["annotations"][REF_NAME] == ref)


class Runc:
    def __init__(self, state: Path) -> None:
        self.binary = str(require_binary("runc", "install Debian's runc (make setup-system)"))
        self.state = state

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.state), *args]


@pytest.fixture
def runc(tmp_path: Path) -> Iterator[Runc]:
    runner = Runc(tmp_path / "runc-state")
    yield runner
    listed = subprocess.run(runner.argv("list", "-q"), capture_output=True, text=True, check=False)
    for container in listed.stdout.split():
        subprocess.run(runner.argv("delete", "--force", container), check=False)


@pytest.fixture(scope="module")
def product_rootfs(archives: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The product image unpacked once; its tags share the layers (and run read-only)."""
    ref = f"flashsale/gateway:{__version__}"
    rootfs = tmp_path_factory.mktemp("product") / "rootfs"
    bundle.unpack(archives[ref], ref, rootfs)
    return rootfs


def prepare(
    archive: Path, ref: str, where: Path, rootfs: Path | None = None, **overrides: Any
) -> tuple[Path, dict[str, Any]]:
    """A bundle for `ref` (unpacked into it unless `rootfs` is given) with a pod's overrides."""
    config = bundle.image_config(archive, ref)
    if rootfs is None:
        bundle.unpack(archive, ref, where / "rootfs")
    else:
        where.mkdir(parents=True)
    bundle.write_bundle(where, bundle.runtime_spec(config, rootfs=rootfs, **overrides))
    return where, config


def run(runc: Runc, where: Path) -> subprocess.CompletedProcess[str]:
    name = f"image-test-{uuid.uuid4().hex[:8]}"
    return subprocess.run(
        runc.argv("run", "--bundle", str(where), name),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def test_the_gateway_image_prints_its_usage(
    archives: dict[str, Path], product_rootfs: Path, runc: Runc, tmp_path: Path
) -> None:
    ref = f"flashsale/gateway:{__version__}"
    where, config = prepare(
        archives[ref], ref, tmp_path / "bundle", product_rootfs, args=["gateway", "--help"]
    )
    assert config["config"]["User"] == "10001:10001"
    done = run(runc, where)
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout.lower()


def test_the_product_runs_as_a_non_root_uid_on_a_read_only_root(
    archives: dict[str, Path], product_rootfs: Path, runc: Runc, tmp_path: Path
) -> None:
    ref = f"flashsale/operator:{__version__}"
    script = (
        "import os, sys\n"
        "import flashsale_operator.__main__, flashsale_gateway.server, flashsale_consumer.runner\n"
        "import confluent_kafka, granian, psycopg, psycopg_binary\n"
        "print('uid', os.getuid(), os.getgid())\n"
        "print('bytecode written', not sys.flags.dont_write_bytecode)\n"
        "try:\n    open('/usr/local/probe', 'w')\nexcept OSError as e:\n    print('root', e.strerror)\n"
        "open('/tmp/probe', 'w').write('ok')\nprint('tmp writable')\n"
    )
    where, _ = prepare(
        archives[ref], ref, tmp_path / "bundle", product_rootfs, command=["python3", "-c", script], args=[]
    )
    done = run(runc, where)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "uid 10001 10001",
        "bytecode written False",
        "root Read-only file system",
        "tmp writable",
    ]


def test_the_operator_image_starts_and_checks_its_configuration(
    archives: dict[str, Path], product_rootfs: Path, runc: Runc, tmp_path: Path
) -> None:
    """With the image's own command and no settings, the operator stops at its configuration check
    (exit 2, one line per missing setting): everything before it imported and ran in the image."""
    ref = f"flashsale/operator:{__version__}"
    where, _ = prepare(archives[ref], ref, tmp_path / "bundle", product_rootfs)
    done = run(runc, where)
    assert done.returncode == 2, done.stderr
    assert "invalid operator configuration: FLASHSALE_OPERATOR_REDIS_URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_tags_differ_only_in_their_command(archives: dict[str, Path]) -> None:
    configs = {
        name: bundle.image_config(
            archives[f"flashsale/{name}:{__version__}"], f"flashsale/{name}:{__version__}"
        )
        for name in ("operator", "gateway", "consumer")
    }
    commands = {name: (c["config"]["Entrypoint"], c["config"].get("Cmd")) for name, c in configs.items()}
    assert commands == {
        "operator": (["python3", "-m", "flashsale_operator"], None),
        "gateway": (["flashsale"], ["gateway"]),
        "consumer": (["flashsale"], ["consumer"]),
    }
    assert len({tuple(c["rootfs"]["diff_ids"]) for c in configs.values()}) == 1


def test_the_pause_image_exits_on_sigterm(archives: dict[str, Path], runc: Runc, tmp_path: Path) -> None:
    ref = f"flashsale/pause:{__version__}"
    where, config = prepare(archives[ref], ref, tmp_path / "bundle", tmpfs={})
    assert config["config"]["User"] == "65535:65535"
    name = f"pause-{uuid.uuid4().hex[:8]}"
    with subprocess.Popen(runc.argv("run", "--bundle", str(where), name)) as process:
        try:
            wait_for(lambda: _status(runc, name) == "running", timeout=120, what="pause running")
            subprocess.run(runc.argv("kill", name, "TERM"), check=True)
            assert process.wait(timeout=60) == 0
        finally:
            process.kill()


def _status(runc: Runc, name: str) -> str:
    done = subprocess.run(runc.argv("state", name), capture_output=True, text=True, check=False)
    return "running" if '"status": "running"' in done.stdout else "not yet"


BROKER = {
    "CLUSTER_ID": "4L6g3nShT-eMCtK--X86sw",
    "KAFKA_NODE_ID": "1",
    "KAFKA_PROCESS_ROLES": "broker,controller",
    "KAFKA_LISTENERS": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
    "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://127.0.0.1:9092",
    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
    "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
    "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@127.0.0.1:9093",
    "KAFKA_LOG_DIRS": "/var/lib/kafka/data/logs",
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
}


def test_the_kafka_image_runs_a_broker_that_keeps_its_data_across_restarts(
    archives: dict[str, Path], runc: Runc, tmp_path: Path
) -> None:
    """In its own network namespace (only a loopback) the broker's port accepts from inside; SIGTERM
    is a controlled shutdown; a second start on the same data directory does not format it again."""
    ref = f"flashsale/kafka:{__version__}"
    data = tmp_path / "data"  # the StatefulSet's volume
    data.mkdir()
    os.chown(data, 10001, 10001)
    where, _ = prepare(
        archives[ref], ref, tmp_path / "bundle", env=BROKER, binds={"/var/lib/kafka/data": data}
    )
    first = run_broker_until_sigterm(runc, where, tmp_path / "first.log")
    assert "formatting /var/lib/kafka/data/logs" in first
    assert (data / "logs/meta.properties").is_file()
    second = run_broker_until_sigterm(runc, where, tmp_path / "second.log")
    assert "formatting" not in second


def run_broker_until_sigterm(runc: Runc, where: Path, log: Path) -> str:
    name = f"kafka-{uuid.uuid4().hex[:8]}"
    with (
        log.open("w") as out,
        subprocess.Popen(runc.argv("run", "--bundle", str(where), name), stdout=out, stderr=out) as process,
    ):
        try:
            wait_for(
                lambda: _accepts(runc, name, 9092) and process.poll() is None,
                timeout=RUN_TIMEOUT,
                what="the broker's port",
                describe=log.read_text,
            )
            subprocess.run(runc.argv("kill", name, "TERM"), check=True)
            process.wait(timeout=120)
        finally:
            process.kill()
    subprocess.run(runc.argv("delete", "--force", name), check=False)
    text = log.read_text()
    assert "shut down completed" in text.lower() or "shutdown complete" in text.lower(), text[-2000:]
    return text


def _accepts(runc: Runc, name: str, port: int) -> bool:
    probe = f"exec 3<>/dev/tcp/127.0.0.1/{port}"
    done = subprocess.run(
        runc.argv("exec", "--user", "10001:10001", name, "bash", "-c", probe),
        capture_output=True,
        check=False,
    )
    return done.returncode == 0
