"""Each piece of the local platform does its real job."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer
from prometheus_client import CollectorRegistry, Counter, start_http_server

from flashsale_dev.components import Prometheus
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.ports import PortReservations
from flashsale_dev.pytest_plugin import PostgresSchema, RedisDatabase
from flashsale_dev.waiting import wait_for

# Decrement the stock only while it lasts, and only once per buyer: the shape of the real gate.
TAKE_ONE = """
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left <= 0 then return 0 end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""


def test_redis_runs_a_lua_stock_gate_atomically_under_concurrency(redis_db: RedisDatabase) -> None:
    redis_db.client.set("stock", 25)
    take_one = redis_db.client.register_script(TAKE_ONE)
    outcomes: list[int] = []
    lock = threading.Lock()

    def buyer(index: int) -> None:
        for attempt in range(3):  # every buyer tries three times: at most one may win
            result = int(take_one(keys=["stock", "buyers"], args=[f"buyer-{index}"]))
            with lock:
                outcomes.append(result if attempt == 0 else min(result, 0))

    threads = [threading.Thread(target=buyer, args=(i,)) for i in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count(1) == 25
    assert int(redis_db.client.get("stock") or -1) == 0
    assert redis_db.client.scard("buyers") == 25


def test_postgres_commits_a_transaction_and_rolls_back_a_failed_one(pg_schema: PostgresSchema) -> None:
    with pg_schema.connect() as conn:
        conn.execute("CREATE TABLE orders (reservation text PRIMARY KEY, qty int NOT NULL)")
        conn.commit()
        with conn.transaction():
            conn.execute("INSERT INTO orders VALUES ('r-1', 1)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            _insert_both(conn, "r-2", "r-1")  # r-1 is taken: r-2 must roll back with it

    with pg_schema.connect() as other:
        assert other.execute("SELECT reservation FROM orders").fetchall() == [("r-1",)]


def _insert_both(conn: psycopg.Connection[tuple[object, ...]], first: str, second: str) -> None:
    with conn.transaction():
        conn.execute("INSERT INTO orders VALUES (%s, 1)", (first,))
        conn.execute("INSERT INTO orders VALUES (%s, 1)", (second,))


def test_kafka_round_trips_messages_and_commits_group_offsets(
    platform: LocalPlatform, kafka_topic: str
) -> None:
    producer = Producer({"bootstrap.servers": platform.kafka.bootstrap_servers, "acks": "all"})
    sent = {f"order-{i}" for i in range(30)}
    for value in sent:
        producer.produce(kafka_topic, value.encode(), key=value.encode())
    assert producer.flush(30) == 0

    group = f"group-{uuid.uuid4().hex[:8]}"
    received = _consume(platform, kafka_topic, group, expected=len(sent))
    assert received == sent

    admin = platform.kafka.admin()
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    committed = offsets[group].result(30).topic_partitions
    assert sum(tp.offset for tp in committed if tp.offset >= 0) == len(sent)


def test_prometheus_scrapes_a_registered_target_and_answers_promql(prometheus: Prometheus) -> None:
    registry = CollectorRegistry()
    orders = Counter("smoke_orders", "Orders written by the smoke target.", registry=registry)
    orders.inc(7)
    ports = PortReservations()
    port = ports.take()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    job = f"smoke-{uuid.uuid4().hex[:6]}"
    try:
        prometheus.register_target(job, f"127.0.0.1:{port}")
        up = wait_for(lambda: prometheus.query(f'up{{job="{job}"}} == 1'), timeout=60, what=f"{job} up")
        assert up[0]["metric"]["job"] == job
        sample = wait_for(lambda: prometheus.query(f'smoke_orders_total{{job="{job}"}}'), timeout=60)
        assert float(sample[0]["value"][1]) == 7.0
    finally:
        prometheus.unregister_target(job)
        server.shutdown()
        server.server_close()
        thread.join()
        ports.release()


def _consume(platform: LocalPlatform, topic: str, group: str, expected: int) -> set[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": platform.kafka.bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received: set[str] = set()
    try:
        wait_for(lambda: _poll_into(consumer, received) >= expected, timeout=90, what="messages")
    finally:
        consumer.close()
    return received


def _poll_into(consumer: Consumer, received: set[str]) -> int:
    message = consumer.poll(1.0)
    if message is not None and message.error() is None:
        received.add((message.value() or b"").decode())
        consumer.commit(message=message, asynchronous=False)
    return len(received)
