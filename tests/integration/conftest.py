"""The integration tests' own fixtures (the platform's come from flashsale_dev.pytest_plugin)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flashsale_dev.platform import LocalPlatform
from flashsale_dev.pytest_plugin import PostgresSchema, RedisDatabase
from flashsale_dev.sale import LocalSale


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
    crashed = local.crashed()
    local.stop()
    assert not crashed, f"processes died during the test: {crashed} (logs in {local.logs})"
