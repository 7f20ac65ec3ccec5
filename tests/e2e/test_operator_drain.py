"""Deleting a sale never destroys accepted reservations.

With PostgreSQL stopped the consumers cannot write, so a live sale's accepted reservations (202s)
wait in its Kafka topic. `kubectl delete` then holds: the FlashSale stays, with condition `Draining`,
an Event, a metric and - past the warning threshold (5 s here, a setting) - a Warning Event and an
alert-worthy log line, however long it takes. PostgreSQL back: every 202 becomes an order, and only
then does the FlashSale disappear. The escape hatch (an annotation) lets the platform team give up
instead: the topic is kept with the unwritten messages in it, their offsets recorded and reported.

PostgreSQL is the session platform's: each test starts it again on the way out, whatever happens.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes
import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from flashsale_dev import faults
from flashsale_dev.cluster import LocalCluster
from flashsale_dev.flashsales import FlashSales, sale_spec
from flashsale_dev.operator_install import (
    NAMESPACE as OPERATOR_NAMESPACE,
)
from flashsale_dev.operator_install import (
    InstalledOperator,
    operator_metrics,
    operator_pods,
    restart_operator,
)
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.pytest_plugin import SESSION_DRAIN_WARNING_SECONDS
from flashsale_dev.shoppers import buy_one_at_a_time
from flashsale_dev.waiting import wait_for
from flashsale_operator.drain import DROP_ANNOTATION
from flashsale_operator.spec import GROUP, PLURAL, VERSION
from flashsale_sale.contract import ReservationMessage, split_records, topic_name

THRESHOLD = SESSION_DRAIN_WARNING_SECONDS  # the session operator's drain warning threshold (5 s)
BUYERS = 8  # one at a time: a Kafka message each
NAME = "doomed"


@dataclass(frozen=True)
class LiveSale:
    sales: FlashSales
    uid: str
    user_token_key: str  # the sale's own (derived from the platform's and namespace/name)


@pytest.fixture
def live_sale(
    flashsale_operator: InstalledOperator, kube_api: kubernetes.client.ApiClient, namespace: str
) -> Iterator[LiveSale]:
    sales = FlashSales(kube_api, namespace)
    created = sales.create(NAME, sale_spec(stock=50, starts_in=8, prewarm_seconds=5, gateway={"replicas": 1}))
    sales.wait_status(
        NAME,
        lambda s: s.get("phase") == "Live" and bool((s.get("gateway") or {}).get("readyReplicas")),
        what="Live and reachable",
    )
    yield LiveSale(sales, str(created["metadata"]["uid"]), flashsale_operator.sale_key(namespace, NAME))
    if sales.exists(NAME):  # the test failed half-way (PostgreSQL is back by now: it drains)
        sales.delete(NAME)
        wait_for(lambda: not sales.exists(NAME), timeout=240, what="deleted")


def orders_of(platform: LocalPlatform, sale_id: str) -> int:
    with psycopg.connect(platform.postgres.url()) as conn:
        row = conn.execute("SELECT count(*) FROM orders WHERE sale_id = %s", (sale_id,)).fetchone()
    return int(row[0]) if row else 0


def operator_log(cluster: LocalCluster, core: Any) -> str:
    """The operator pod's log, from the file the node agent writes for each container."""
    (pod,) = operator_pods(core)
    pods_dir = cluster.node_agent.dir / "pods"
    files = sorted(pods_dir.glob(f"{OPERATOR_NAMESPACE}_{pod.metadata.name}_*.log"))
    return "".join(f.read_text(errors="replace") for f in files)


def drain_metric(core: Any, name: str, namespace: str) -> float | None:
    found = re.search(
        rf'^{name}{{namespace="{namespace}",sale="{NAME}"}} (\S+)$', operator_metrics(core), re.M
    )
    return float(found[1]) if found else None


class StatusWatch:
    """Every status the FlashSale had until it was gone, from a watch (a deleted object has none to read)."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str) -> None:
        self.seen: list[dict[str, Any]] = []
        self._custom = kubernetes.client.CustomObjectsApi(api)
        self._namespace = namespace
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        watch = kubernetes.watch.Watch()
        since: dict[str, str] = {}  # each stream resumes where the last one ended: no event is missed
        while not self._stop.is_set():
            for event in watch.stream(self._custom.list_namespaced_custom_object, GROUP, VERSION,
                                      self._namespace, PLURAL, field_selector=f"metadata.name={NAME}",
                                      timeout_seconds=5, **since):  # fmt: skip
                self.seen.append(dict(event["object"].get("status") or {}))
                since = {"resource_version": event["object"]["metadata"]["resourceVersion"]}
                if self._stop.is_set():
                    break

    def __enter__(self) -> StatusWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_a_deleted_sale_holds_until_every_accepted_reservation_is_an_order(
    live_sale: LiveSale,
    kube_api: kubernetes.client.ApiClient,
    cluster: LocalCluster,
    namespace: str,
    platform: LocalPlatform,
) -> None:
    sales, uid = live_sale.sales, live_sale.uid
    core = kubernetes.client.CoreV1Api(kube_api)
    url = sales.status(NAME)["gateway"]["url"]
    with faults.down(platform.postgres, crash=False):  # started again on the way out, whatever happens
        answers = buy_one_at_a_time(url, live_sale.user_token_key, [f"u{i}" for i in range(BUYERS)])
        accepted = answers.count(202)
        assert accepted == BUYERS, answers
        sales.delete(NAME)

        draining = sales.wait_condition(NAME, "Draining", "True", "OrdersUnwritten", timeout=180)
        assert f"{BUYERS} accepted reservation message(s) not written" in draining["message"]
        assert f"consumer group lag {BUYERS} on topic {topic_name(uid)}" in draining["message"]
        assert "PostgreSQL does not answer" in draining["message"]  # why, as the operator sees it
        sales.wait_event_reasons(NAME, ("Draining", "DrainOverdue"), ["Draining", "DrainOverdue"])
        # Three times the threshold into the drain (the operator's own count of it), it still holds.
        wait_for(
            lambda: (drain_metric(core, "flashsale_operator_drain_seconds", namespace) or 0) >= 3 * THRESHOLD,
            timeout=180,
            what="the drain running for three times its warning threshold",
        )
        assert sales.exists(NAME)
        still = sales.condition(NAME, "Draining")
        assert still is not None, sales.status(NAME)
        assert still["status"] == "True", still
        assert sales.status(NAME)["drain"]["unwritten"] == BUYERS
        assert drain_metric(core, "flashsale_operator_drain_unwritten", namespace) == BUYERS
        overdue = next(e for e in sales.events(NAME) if e.reason == "DrainOverdue")
        assert overdue.type == "Warning"
        assert f"lag {BUYERS}" in overdue.message
        alert = [line for line in operator_log(cluster, core).splitlines() if "drain overdue" in line]
        assert any(f"{namespace}/{NAME}" in line and f"lag {BUYERS}" in line for line in alert), alert

    # PostgreSQL is back: the consumers write every 202, and only then does the FlashSale go.
    wait_for(lambda: not sales.exists(NAME), timeout=240, what="the FlashSale gone once drained")
    assert orders_of(platform, uid) == accepted  # read at once: the finalizer waited for all of them
    assert "Drained" in sales.event_reasons(NAME)
    assert topic_name(uid) not in platform.kafka.admin().list_topics(timeout=10).topics


def test_the_escape_hatch_keeps_the_topic_and_records_what_was_not_written(
    live_sale: LiveSale,
    kube_api: kubernetes.client.ApiClient,
    cluster: LocalCluster,
    namespace: str,
    platform: LocalPlatform,
) -> None:
    sales, uid = live_sale.sales, live_sale.uid
    core = kubernetes.client.CoreV1Api(kube_api)
    topic = topic_name(uid)
    url = sales.status(NAME)["gateway"]["url"]
    users = [f"u{i}" for i in range(BUYERS)]
    try:
        with faults.down(platform.postgres, crash=False), StatusWatch(kube_api, namespace) as watch:
            assert buy_one_at_a_time(url, live_sale.user_token_key, users).count(202) == BUYERS
            sales.delete(NAME)
            sales.wait_condition(NAME, "Draining", "True", "OrdersUnwritten", timeout=180)
            annotation = {"metadata": {"annotations": {DROP_ANNOTATION: "true"}}}
            sales.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, NAME, annotation)
            # The record is still down: the teardown finishes without it.
            wait_for(
                lambda: not sales.exists(NAME), timeout=180, what="the FlashSale gone by the escape hatch"
            )

            recorded = next(s["drain"] for s in watch.seen if (s.get("drain") or {}).get("dropped"))
            assert recorded["topic"] == topic
            assert recorded["unwritten"] == BUYERS
            ranges = {p["partition"]: (p["fromOffset"], p["toOffset"]) for p in recorded["partitions"]}
            assert sum(end - first for first, end in ranges.values()) == BUYERS
            kept = next(e for e in sales.events(NAME) if e.reason == "UnwrittenKept")
            assert kept.type == "Warning"
            assert f"{BUYERS} accepted reservation message(s)" in kept.message
            for partition, (first, end) in ranges.items():
                assert f"partition {partition} offsets {first}..{end}" in kept.message
            logged = [line for line in operator_log(cluster, core).splitlines() if DROP_ANNOTATION in line]
            assert any(f"{namespace}/{NAME}" in line and f"lag {BUYERS}" in line for line in logged), logged

            # The topic is still there, and the recorded offsets hold exactly the accepted reservations.
            assert topic in platform.kafka.admin().list_topics(timeout=10).topics
            assert {m.user_id for m in read_range(platform, topic, ranges)} == set(users)
    finally:
        platform.kafka.delete_topic(topic)  # the platform team's to replay or delete; here, the test's
    assert orders_of(platform, uid) == 0  # dropped: the consumers never wrote them (nor will, unreplayed)


def test_an_operator_restarted_mid_drain_goes_on_with_the_same_teardown(
    live_sale: LiveSale,
    kube_api: kubernetes.client.ApiClient,
    cluster: LocalCluster,
    namespace: str,
    platform: LocalPlatform,
) -> None:
    """The finalizer's state is kopf's (annotations), not the operator's memory: a new operator pod
    resumes the same drain (same start, so no second Draining Event) and still holds."""
    sales, uid = live_sale.sales, live_sale.uid
    core = kubernetes.client.CoreV1Api(kube_api)
    url = sales.status(NAME)["gateway"]["url"]
    users = [f"u{i}" for i in range(BUYERS)]
    with faults.ledger_locked(platform.postgres.url(), uid):  # consumers held back (the record is up)
        assert buy_one_at_a_time(url, live_sale.user_token_key, users).count(202) == BUYERS
        sales.delete(NAME)
        sales.wait_condition(NAME, "Draining", "True", "OrdersUnwritten", timeout=180)
        restart_operator(cluster)
        # The new operator's drain is past the threshold: a new teardown would announce itself again.
        wait_for(
            lambda: (drain_metric(core, "flashsale_operator_drain_seconds", namespace) or 0) >= 2 * THRESHOLD,
            timeout=180,
            what="the new operator draining past the warning threshold",
        )
        assert sales.exists(NAME)
        assert sales.wait_condition(NAME, "Draining", "True", "OrdersUnwritten")["status"] == "True"
        reasons = sales.event_reasons(NAME)
        assert reasons.count("Draining") == 1, reasons
        assert reasons.count("DrainOverdue") == 1, reasons
    wait_for(lambda: not sales.exists(NAME), timeout=240, what="the FlashSale gone once drained")
    assert orders_of(platform, uid) == BUYERS


def read_range(
    platform: LocalPlatform, topic: str, ranges: dict[int, tuple[int, int]]
) -> list[ReservationMessage]:
    """The reservations in [first, end) of each partition, read without any consumer group's commit."""
    reader = Consumer({"bootstrap.servers": platform.kafka.bootstrap_servers, "group.id": "drain-test-reader",
                       "enable.auto.commit": False, "auto.offset.reset": "earliest"})  # fmt: skip
    try:
        reader.assign([TopicPartition(topic, p, first) for p, (first, _) in ranges.items()])
        unread = {(p, offset) for p, (first, end) in ranges.items() for offset in range(first, end)}
        found: list[ReservationMessage] = []

        def collect() -> bool:
            message = reader.poll(1.0)
            if message is not None and message.error() is None:
                at = (message.partition() or 0, message.offset() or 0)
                if at in unread:
                    unread.discard(at)
                    found.extend(ReservationMessage.decode(r) for r in split_records(message.value() or b""))
            return not unread

        wait_for(collect, timeout=60, what=f"the recorded offsets read back from {topic}")
        return found
    finally:
        reader.close()
