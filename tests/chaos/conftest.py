"""The chaos tier's own platform: these tests kill and restart Redis, Kafka and PostgreSQL.

`platform` is overridden here, for this directory only, with a LocalPlatform of the chaos tier's own,
so no other tier ever sees a broker that a chaos test has just killed; the per-test fixtures built on
it (`redis_db`, `kafka_topic`, `pg_schema` from flashsale_dev.pytest_plugin) follow the override.
Redis runs without persistence on purpose: a restart loses the gate, which scenario 5 is about.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaos import crowd
from flashsale_dev.platform import LocalPlatform


@pytest.fixture(scope="session")
def platform() -> Iterator[LocalPlatform]:
    with LocalPlatform(redis_appendonly=False, postgres_durable=False) as started:
        yield started


@pytest.fixture(autouse=True)
def _the_platform_is_whole_for_the_next_test(platform: LocalPlatform) -> Iterator[None]:
    """After each test (and after the `sale` fixture stopped its processes): no crowd left running,
    and every component the test took down started again, whatever the test did to it."""
    yield
    while crowd.RUNNING:
        crowd.RUNNING.pop().halt()
    for component in platform.components:
        if not component.running:
            component.start()
