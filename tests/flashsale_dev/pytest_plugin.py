"""pytest fixtures for the local platform (loaded with `-p flashsale_dev.pytest_plugin`).

Session-scoped: `platform` (Redis, PostgreSQL, Kafka, Prometheus) and `cluster` (the Kubernetes
control plane), each started only when a test asks for it and stopped at the end of the run, also
when the run is interrupted. Per test: a fresh Redis database, Kafka topic, PostgreSQL schema and
Kubernetes namespace, so tests never see each other's data; and `sale`, a sale of the test's own on
them whose gateway and consumer processes (flashsale_dev.sale) are stopped, and checked for crashes,
at the end.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import kubernetes
import psycopg
import pytest
import redis

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.launcher import throwaway_cluster
from flashsale_dev.components import Prometheus
from flashsale_dev.components.redis import DATABASES
from flashsale_dev.operator_install import InstalledOperator, install_operator
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.sale import LocalSale

_redis_databases = itertools.cycle(range(1, DATABASES))


@pytest.fixture(scope="session")
def platform() -> Iterator[LocalPlatform]:
    with LocalPlatform() as started:
        yield started


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    with throwaway_cluster("flashsale-cluster-") as local:
        yield local


@dataclass(frozen=True)
class RedisDatabase:
    url: str
    client: redis.Redis


@pytest.fixture
def redis_db(platform: LocalPlatform) -> Iterator[RedisDatabase]:
    """A Redis logical database of this test's own, empty at the start."""
    db = next(_redis_databases)
    client = platform.redis.client(db)
    client.flushdb()
    try:
        yield RedisDatabase(platform.redis.url(db), client)
    finally:
        client.close()


@pytest.fixture
def kafka_topic(platform: LocalPlatform) -> Iterator[str]:
    """A new Kafka topic (3 partitions) for this test, deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    platform.kafka.create_topic(name, partitions=3)
    yield name
    platform.kafka.delete_topic(name)


@dataclass(frozen=True)
class PostgresSchema:
    name: str
    url: str  # the database URL with search_path set to the schema

    def connect(self, **kwargs: object) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url, connect_timeout=5, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def pg_schema(platform: LocalPlatform) -> Iterator[PostgresSchema]:
    """A PostgreSQL schema of this test's own; connections from `.url` use it by default."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with platform.postgres.connect(autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield PostgresSchema(name, f"{platform.postgres.url()}?options=-csearch_path%3D{name}")
    with platform.postgres.connect(autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def sale(
    platform: LocalPlatform,
    redis_db: RedisDatabase,
    kafka_topic: str,
    pg_schema: PostgresSchema,
    tmp_path: Path,
) -> Iterator[LocalSale]:
    """A sale of this test's own: its Redis database, Kafka topic and PostgreSQL schema, nothing prepared.

    Its settings may change until a process starts. Every gateway and consumer the test starts is
    stopped at the end; one that died during the test, unless the test ended it or awaited its exit,
    fails the test.
    """
    local = LocalSale(
        redis_url=redis_db.url,
        kafka_bootstrap_servers=platform.kafka.bootstrap_servers,
        topic=kafka_topic,
        database_url=pg_schema.url,
        logs=tmp_path / "logs",
        reserve_port=platform.reserve_port,
    )
    yield local
    crashed = {p.name: p.returncode for p in local.processes if p.name in local.crashed()}
    local.stop()
    assert not crashed, f"processes died during the test (exit codes): {crashed} (logs in {local.logs})"


@pytest.fixture
def prometheus(platform: LocalPlatform) -> Prometheus:
    return platform.prometheus


@pytest.fixture
def kube_api(cluster: LocalCluster) -> Iterator[kubernetes.client.ApiClient]:
    with cluster.api_client() as api:
        yield api


SESSION_DRAIN_WARNING_SECONDS = 5  # the session operator's drain warning threshold (default 120)


@pytest.fixture(scope="session")
def flashsale_operator(cluster: LocalCluster, platform: LocalPlatform) -> InstalledOperator:
    """The operator installed from manifests/ as a pod on the session cluster, serving every namespace.

    It runs under its own ServiceAccount and talks to the session platform's middleware; sales of
    different tests live in different namespaces and have their own keys and topics (by uid). It is
    the test build (operator_test_build.py): the shipped operator plus the kill points a sale may arm
    with an annotation (operator_kill_points.py). A deleted sale still draining after
    SESSION_DRAIN_WARNING_SECONDS is reported as overdue (tests/e2e/test_operator_drain.py waits
    three times that); other tests' sales drain within moments, so the short threshold only shows
    in their operator's log when one does not.
    """
    settings = {"FLASHSALE_OPERATOR_DRAIN_WARNING_SECONDS": str(SESSION_DRAIN_WARNING_SECONDS)}
    return install_operator(cluster, platform, test_build=True, settings=settings)


@pytest.fixture
def namespace(kube_api: kubernetes.client.ApiClient) -> Iterator[str]:
    """A fresh namespace for this test; deleted (and garbage-collected) afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": name, "labels": {"flashsale.dev/test": "true"}}})
    yield name
    core.delete_namespace(name)
