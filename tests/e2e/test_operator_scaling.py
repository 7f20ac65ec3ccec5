"""Consumers follow the sale's Kafka backlog: up within seconds, never past maxReplicas or the
partitions, down only after the stabilization window, and never on a lag it cannot read."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from flashsale_dev import faults
from flashsale_dev.flashsales import FlashSales, sale_spec
from flashsale_dev.operator_install import InstalledOperator, operator_metrics
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.shoppers import buy_one_at_a_time
from flashsale_dev.waiting import wait_for

WINDOW = 10  # scaleDownStabilizationSeconds
SCALING = {"minReplicas": 1, "maxReplicas": 3, "lagThreshold": 5, "scaleDownStabilizationSeconds": WINDOW}
BUYERS = 40  # 40 messages behind / 5 per consumer = 8 wanted; maxReplicas 3 caps it


class ReplicaWatch:
    """Records every replica count the consumer Deployment is asked for, from a watch (not polling)."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str, name: str) -> None:
        self.seen: list[int] = []
        self._stop = threading.Event()
        self._apps = kubernetes.client.AppsV1Api(api)
        self._thread = threading.Thread(target=self._run, args=(namespace, name), daemon=True)

    def _run(self, namespace: str, name: str) -> None:
        watch = kubernetes.watch.Watch()
        while not self._stop.is_set():
            for event in watch.stream(self._apps.list_namespaced_deployment, namespace,
                                      field_selector=f"metadata.name={name}", timeout_seconds=5):  # fmt: skip
                self.seen.append(int(event["object"].spec.replicas or 0))
                if self._stop.is_set():
                    break

    def __enter__(self) -> ReplicaWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def consumer_replicas(api: kubernetes.client.ApiClient, namespace: str, name: str) -> int:
    scale = kubernetes.client.AppsV1Api(api).read_namespaced_deployment_scale(name, namespace)
    return int(scale.spec.replicas or 0)


@pytest.fixture
def live_sale(
    flashsale_operator: InstalledOperator, kube_api: kubernetes.client.ApiClient, namespace: str
) -> Iterator[tuple[FlashSales, dict[str, Any]]]:
    sales = FlashSales(kube_api, namespace)
    spec = sale_spec(stock=100, starts_in=8, prewarm_seconds=5, gateway={"replicas": 1},
                     queue={"partitions": 4}, consumers=SCALING)  # fmt: skip
    created = sales.create("busy", spec)
    sales.wait_status(
        "busy",
        lambda s: s.get("phase") == "Live" and bool((s.get("gateway") or {}).get("readyReplicas")),
        what="Live and reachable",
    )
    yield sales, created
    sales.delete("busy")
    wait_for(lambda: not sales.exists("busy"), timeout=240, what="deleted")


def test_a_backlog_scales_consumers_up_at_once_capped_and_down_only_after_the_window(
    live_sale: tuple[FlashSales, dict[str, Any]],
    flashsale_operator: InstalledOperator,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    platform: LocalPlatform,
) -> None:
    sales, created = live_sale
    uid = created["metadata"]["uid"]
    url = sales.status("busy")["gateway"]["url"]
    core = kubernetes.client.CoreV1Api(kube_api)
    with ReplicaWatch(kube_api, namespace, "busy-consumer") as watch:
        # The consumers are held back (their batches wait on the ledger row): the backlog builds.
        with faults.ledger_locked(platform.postgres.url(), uid):
            # One at a time: each reservation is a Kafka message of its own, so the lag is BUYERS
            # (buyers at once share messages: a gateway publishes one per event-loop tick).
            answers = buy_one_at_a_time(
                url, flashsale_operator.sale_key(namespace, "busy"), [f"u{i}" for i in range(BUYERS)]
            )
            assert answers.count(202) == BUYERS
            up = sales.wait_status("busy", lambda s: (s.get("consumers") or {}).get("replicas") == 3,
                                   what="scaled up to maxReplicas", timeout=120)  # fmt: skip
            assert up["consumers"]["desiredReplicas"] == 3  # 8 wanted, maxReplicas 3
            # The reason is the latest tick's: ScaledUp on the tick that scaled, Steady from the next
            # one (a second later) while the backlog is held; the Events below keep every ScaledUp.
            assert up["consumers"]["lastScaleReason"] in ("ScaledUp", "Steady")
            assert up["consumers"]["lastScaleTime"]
            assert up["consumers"]["lag"] >= 5
            assert consumer_replicas(kube_api, namespace, "busy-consumer") == 3
            assert f'flashsale_operator_consumer_replicas{{namespace="{namespace}",sale="busy"}} 3.0' in (
                operator_metrics(core)
            )
        # Released: the backlog drains, and the replicas come down only after a calm window.
        down = sales.wait_status("busy", lambda s: (s.get("consumers") or {}).get("replicas") == 1,
                                 what="scaled down to minReplicas", timeout=180)  # fmt: skip
        assert down["consumers"]["lag"] == 0
        assert down["consumers"]["lastScaleReason"] in ("ScaledDown", "Steady")
    assert max(watch.seen) == 3  # never beyond maxReplicas (nor the 4 partitions)
    assert sales.wait_status("busy", lambda s: s["stock"]["ordered"] == BUYERS, what="every order written")
    events = [e for e in sales.events("busy") if e.reason in ("ScaledUp", "ScaledDown")]
    assert [e.reason for e in events][-1] == "ScaledDown"
    first_up = next(e for e in events if e.reason == "ScaledUp")
    last_down = events[-1]
    assert (last_down.event_time - first_up.event_time).total_seconds() >= WINDOW
    # Each scale-up goes straight to what the lag it saw asks for (capped), never one step at a time;
    # how many steps there are depends on how fast the backlog built against the 1 s tick.
    ups = [
        re.match(r"consumers (\d+) -> (\d+): lag (\d+) > ", e.message)
        for e in events
        if e.reason == "ScaledUp"
    ]
    assert all(ups), [e.message for e in events]
    for up_event in ups:
        assert up_event is not None
        to, lag = int(up_event[2]), int(up_event[3])
        assert to == min(math.ceil(lag / SCALING["lagThreshold"]), SCALING["maxReplicas"]), up_event[0]


def test_while_kafka_is_unreachable_the_replicas_hold_and_the_status_says_why(
    live_sale: tuple[FlashSales, dict[str, Any]],
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    platform: LocalPlatform,
) -> None:
    sales, _ = live_sale
    sales.wait_status("busy", lambda s: (s.get("consumers") or {}).get("lastScaleReason") == "Steady",
                      what="a steady scaling loop")  # fmt: skip
    before = consumer_replicas(kube_api, namespace, "busy-consumer")
    with faults.down(platform.kafka):
        unknown = sales.wait_status(
            "busy",
            lambda s: s["consumers"]["lastScaleReason"] == "LagUnknown",
            what="LagUnknown",
            timeout=120,
        )
        assert "replicas held" in unknown["consumers"]["message"]
        assert consumer_replicas(kube_api, namespace, "busy-consumer") == before
    sales.wait_status("busy", lambda s: s["consumers"]["lastScaleReason"] != "LagUnknown",
                      what="scaling resumed after Kafka came back", timeout=180)  # fmt: skip
    assert consumer_replicas(kube_api, namespace, "busy-consumer") == before
