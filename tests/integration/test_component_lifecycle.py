"""Components can be stopped, crashed and started again on the same port and data - the chaos
tests of later work rely on it - and several platforms run side by side."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from flashsale_dev.components import Postgres, Redis
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.ports import PortReservations
from flashsale_dev.process import ComponentError
from flashsale_dev.pytest_plugin import PostgresSchema


def test_a_killed_kafka_broker_keeps_its_topics_and_committed_offsets(
    platform: LocalPlatform, kafka_topic: str
) -> None:
    servers = platform.kafka.bootstrap_servers
    producer = Producer({"bootstrap.servers": servers, "acks": "all"})
    for i in range(10):
        producer.produce(kafka_topic, f"before-{i}".encode(), partition=0)
    assert producer.flush(30) == 0
    group = f"group-{uuid.uuid4().hex[:8]}"
    assert _read(servers, kafka_topic, group, count=10) == [f"before-{i}" for i in range(10)]

    port = platform.kafka.port
    platform.kafka.kill()
    try:
        platform.kafka.start()
    finally:
        if not platform.kafka.running:  # leave the session's broker up for the other tests
            platform.kafka.start()
    assert platform.kafka.port == port
    assert kafka_topic in platform.kafka.admin().list_topics(timeout=30).topics

    producer = Producer({"bootstrap.servers": servers, "acks": "all"})
    producer.produce(kafka_topic, b"after", partition=0)
    assert producer.flush(30) == 0
    # The group resumes after its committed offset: only the new message is delivered.
    assert _read(servers, kafka_topic, group, count=1) == ["after"]


def test_a_killed_postgres_keeps_committed_rows(platform: LocalPlatform, pg_schema: PostgresSchema) -> None:
    with pg_schema.connect() as conn:
        conn.execute("CREATE TABLE ledger (id int PRIMARY KEY)")
        conn.execute("INSERT INTO ledger SELECT generate_series(1, 100)")
        conn.commit()
    platform.postgres.kill()
    platform.postgres.start()
    with pg_schema.connect() as conn:
        assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (100,)


def test_redis_with_aof_keeps_writes_across_a_crash(tmp_path: Path) -> None:
    ports = PortReservations()
    redis = Redis(tmp_path, ports, appendonly=True)
    try:
        redis.start()
        with redis.client() as client:
            client.set("stock", 41)
            client.decr("stock")
        redis.kill()
        redis.start()
        with redis.client() as client:
            assert client.get("stock") == b"40"
    finally:
        redis.stop()
        ports.release()


def test_a_component_that_cannot_start_fails_with_its_own_log(tmp_path: Path) -> None:
    ports = PortReservations()
    redis = Redis(tmp_path, ports)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", redis.port))
        squatter.listen()
        with pytest.raises(ComponentError, match=r"(?i)address already in use"):
            redis.start()
    redis.stop()
    ports.release()


def test_two_platforms_run_side_by_side(platform: LocalPlatform) -> None:
    with LocalPlatform() as second:
        first_ports = {c.port for c in platform.components}
        second_ports = {c.port for c in second.components}
        assert not first_ports & second_ports
        assert platform.root != second.root
        with platform.redis.client() as a, second.redis.client() as b:
            a.set("who", "first")
            b.set("who", "second")
            assert (a.get("who"), b.get("who")) == (b"first", b"second")
    assert second.leftover_processes() == []
    assert not second.root.exists()


def _read(servers: str, topic: str, group: str, count: int) -> list[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[str] = []
    try:
        for _ in range(120):  # bounded: up to ~2 minutes of polls
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            values.append((message.value() or b"").decode())
            consumer.commit(message=message, asynchronous=False)
            if len(values) == count:
                break
    finally:
        consumer.close()
    return values


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_postgres_under_a_directory_closed_to_its_user_says_how_to_fix_it(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    ports = PortReservations()
    with pytest.raises(ComponentError, match=r"cannot reach .* put the platform's state under /tmp"):
        Postgres(closed, ports).start()
    ports.release()
