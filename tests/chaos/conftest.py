"""The chaos tier's own platform: these tests kill and restart Redis, Kafka and PostgreSQL.

`platform` is overridden here, for this directory only, with a LocalPlatform of the chaos tier's own,
so no other tier ever sees a broker that a chaos test has just killed; the per-test fixtures built on
it (`redis_db`, `kafka_topic`, `pg_schema` from flashsale_dev.pytest_plugin) follow the override.
Redis runs without persistence on purpose: a restart loses the gate, which scenario 5 is about.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos import crowd
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.pytest_plugin import PostgresSchema, RedisDatabase
from flashsale_dev.sale import LocalSale


@pytest.fixture(scope="session")
def platform() -> Iterator[LocalPlatform]:
    with LocalPlatform(redis_appendonly=False, postgres_durable=False) as started:
        yield started


@pytest.fixture
def sale(
    platform: LocalPlatform,
    redis_db: RedisDatabase,
    kafka_topic: str,
    pg_schema: PostgresSchema,
    tmp_path: Path,
) -> Iterator[LocalSale]:
    """A sale of this test's own on the chaos platform (as tests/integration/conftest.py's `sale`).

    Every process the test started is stopped at the end; one that died without the test ending it
    fails the test. The middleware is left running for the next test, whatever this one did to it.
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
    while crowd.RUNNING:
        crowd.RUNNING.pop().halt()
    crashed = {p.name: p.returncode for p in local.processes if p.name in local.crashed()}
    local.stop()
    for component in platform.components:
        if not component.running:
            component.start()
    assert not crashed, f"processes died during the test (exit codes): {crashed} (logs in {local.logs})"
