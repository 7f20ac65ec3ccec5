"""Small pieces of the local platform that need no server."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from flashsale_dev.components.prometheus import annotated_target
from flashsale_dev.paths import versions
from flashsale_dev.ports import PortReservations
from flashsale_dev.waiting import ConditionTimeout, wait_for


def test_every_pinned_version_is_exact() -> None:
    pinned = versions()
    tools = ("KUBERNETES", "ETCD", "KWOK", "HELM", "KAFKA", "CONTAINERD")
    assert {f"{tool}_VERSION" for tool in tools} <= set(pinned)
    for key, value in pinned.items():
        if key == "KUBERNETES_BUILD_RECIPE":  # a name, part of the k8s build's cache dir
            continue
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", value), f"{key}={value} is not an exact version"


def test_reserved_ports_are_distinct_free_and_held_until_released() -> None:
    first, second = PortReservations(), PortReservations()
    try:
        taken = {first.take() for _ in range(20)} | {second.take() for _ in range(20)}
        assert len(taken) == 40
        for port in taken:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))  # nothing listens there yet
    finally:
        first.release()
        second.release()


def test_wait_for_returns_the_first_truthy_answer() -> None:
    answers: Iterator[object] = iter([None, 0, [], "ready"])
    assert wait_for(lambda: next(answers), timeout=10, interval=0.001) == "ready"


def test_wait_for_treats_exceptions_as_not_yet() -> None:
    calls: Iterator[Exception | bool] = iter([ConnectionError("refused"), ConnectionError("refused"), True])

    def probe() -> bool:
        answer = next(calls)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_for(probe, timeout=10, interval=0.001) is True


def test_wait_for_explains_what_it_waited_for() -> None:
    with pytest.raises(ConditionTimeout, match=r"(?s)the broker.*refused.*state: down"):
        wait_for(_refuse, timeout=0.05, interval=0.01, what="the broker", describe=lambda: "state: down")


def _refuse() -> None:
    raise ConnectionRefusedError("refused")


def test_prometheus_scrapes_a_pod_where_its_annotations_say() -> None:
    """As kubernetes_sd (role: pod) with the usual relabelling: the annotated port and path, the pod's IP."""
    asks = {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}
    assert annotated_target(asks, "127.5.0.7") == ("127.5.0.7:9090", "/metrics")
    assert annotated_target({**asks, "prometheus.io/path": "/m"}, "127.5.0.7") == ("127.5.0.7:9090", "/m")
    assert annotated_target({**asks, "prometheus.io/scrape": "false"}, "127.5.0.7") is None
    assert annotated_target(asks, None) is None  # not scheduled yet
    assert annotated_target(None, "127.5.0.7") is None
