"""flashsale/kafka's entrypoint (manifests/images/kafka/entrypoint.sh) speaks the apache/kafka image's
environment contract: run on the host with bash in its print-only mode, it turns KAFKA_* variables
into the same broker properties as the local platform's image (flashsale_dev.kafka_image)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flashsale_dev import kafka_image
from flashsale_dev.components.kafka import LOG4J2
from flashsale_operator.render import SaleRef
from flashsale_operator.render_kafka import broker_env

pytestmark = pytest.mark.unit

IMAGE_DIR = Path(__file__).resolve().parents[2] / "manifests/images/kafka"
REQUIRED = {
    "KAFKA_NODE_ID": "1",
    "KAFKA_PROCESS_ROLES": "broker,controller",
    "KAFKA_LISTENERS": "PLAINTEXT://127.0.0.1:9092",
    "KAFKA_LOG_DIRS": "/var/lib/kafka/data/logs",
}


def printed(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(IMAGE_DIR / "entrypoint.sh"), "--print-properties"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def properties(env: dict[str, str]) -> dict[str, str]:
    done = printed(env)
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if line)


def test_variables_become_properties_by_the_official_images_rules() -> None:
    found = properties({**REQUIRED, "KAFKA_A__B___C": "x", "KAFKA_NUM_PARTITIONS": "1"})
    assert found["log.dirs"] == "/var/lib/kafka/data/logs"
    assert found["a_b-c"] == "x"
    assert found["num.partitions"] == "1"


def test_the_launchers_own_variables_are_not_properties() -> None:
    found = properties({**REQUIRED, "KAFKA_HEAP_OPTS": "-Xmx1g", "KAFKA_OPTS": "-Dx=1", "CLUSTER_ID": "abc"})
    assert set(found) == {"node.id", "process.roles", "listeners", "log.dirs"}


def test_a_missing_required_variable_is_named() -> None:
    env = {k: v for k, v in REQUIRED.items() if k != "KAFKA_LISTENERS"}
    done = printed(env)
    assert done.returncode == 1
    assert "KAFKA_LISTENERS is not set" in done.stderr


def test_the_operators_broker_env_gives_the_same_properties_as_the_local_image() -> None:
    ref = SaleRef(name="spring", namespace="shop", uid="5c7e0c4e-3b1e-4a47-9d5c-2b9b8f0d9e11")
    env = {item["name"]: item["value"] for item in broker_env(ref) if "value" in item}
    assert properties(env) == kafka_image.broker_properties(env)


def test_the_image_logs_like_the_platforms_broker() -> None:
    assert (IMAGE_DIR / "log4j2.properties").read_text() == LOG4J2
