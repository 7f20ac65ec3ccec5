"""The kind tier: a kind cluster from pytest-kind, the images `make images` built, the operator journey.

It runs only where a Docker engine answers and a kind binary is found; elsewhere every test of the
tier is skipped, with the reason, before any fixture starts anything (no kind cluster, no local
platform). Finding out costs no process when there is no Docker socket (as on the project's own
machines) and at most one `docker info` otherwise.

The `kind_cluster` fixture overrides pytest-kind's own to give the cluster its two pools
(kind-cluster.yaml) and to use the local platform's kubectl; it honours pytest-kind's options
(`--cluster-name`, `--keep-cluster`, `--kind-image`, `--kind-bin`, `--kind-kubectl-bin`).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
from pytest_kind import KindCluster  # type: ignore[import-untyped]

from flashsale_dev.paths import tool_dir
from kind.kind_platform import CLUSTER_CONFIG, KindJourneyCluster, load_images

HERE = Path(__file__).parent
DOCKER_SOCKET = Path("/var/run/docker.sock")
DOCKER_INFO_TIMEOUT = 30  # seconds: an engine that answers does so at once; one that hangs is absent


@functools.cache
def docker_engine_problem() -> str | None:
    """Why there is no usable Docker engine, or None when `docker info` answers."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    if not os.environ.get("DOCKER_HOST") and not DOCKER_SOCKET.exists():
        return f"no Docker engine (no {DOCKER_SOCKET} and DOCKER_HOST unset)"
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_INFO_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"no Docker engine (docker info: no answer in {DOCKER_INFO_TIMEOUT} s)"
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["exit status " + str(done.returncode)])[-1]
        return f"no Docker engine (docker info: {said})"
    return None


def kind_binary(config: pytest.Config) -> str | None:
    given = config.getoption("kind_bin")
    return str(given) if given else shutil.which("kind")


def kubectl_binary(config: pytest.Config) -> str | None:
    given = config.getoption("kind_kubectl_bin")
    built = tool_dir("k8s") / "kubectl"
    return str(given) if given else (str(built) if built.exists() else shutil.which("kubectl"))


def kind_tier_problem(config: pytest.Config) -> str | None:
    if problem := docker_engine_problem():
        return problem
    if kind_binary(config) is None:
        return "no kind binary (put kind on PATH or pass --kind-bin)"
    if kubectl_binary(config) is None:
        return "no kubectl (run `make setup`, or pass --kind-kubectl-bin)"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture of a kind test: skip it, with the reason, where the tier cannot run."""
    if HERE in item.path.parents and (problem := kind_tier_problem(item.config)):
        pytest.skip(f"kind tier: {problem}")


@pytest.fixture(scope="session")
def kind_cluster(request: pytest.FixtureRequest) -> Iterator[KindCluster]:
    config = request.config
    cluster = KindCluster(
        config.getoption("cluster_name"),
        image=config.getoption("kind_image"),
        kind_path=Path(str(kind_binary(config))),
        kubectl_path=Path(str(kubectl_binary(config))),
    )
    cluster.create(config_file=CLUSTER_CONFIG)
    try:
        load_images(cluster)
        yield cluster
    finally:
        if not config.getoption("keep_cluster"):
            cluster.delete()


@pytest.fixture(scope="session")
def kind_journey_cluster(kind_cluster: KindCluster) -> KindJourneyCluster:
    return KindJourneyCluster(kind_cluster)


@pytest.fixture
def kind_namespace(kind_journey_cluster: KindJourneyCluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = kubernetes.client.CoreV1Api(kind_journey_cluster.api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)
