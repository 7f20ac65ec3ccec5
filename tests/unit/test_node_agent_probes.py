"""Probe specs get the API's defaults; results count against the thresholds as in the kubelet."""

from __future__ import annotations

import pytest

from flashsale_dev.cluster.node_agent.probes import ProbeSpec, ProbeTracker, parse_probe, resolve_port

pytestmark = pytest.mark.unit

CONTAINER = {"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}


def test_no_probe_is_none_and_defaults_are_the_apis() -> None:
    assert parse_probe(None) is None
    spec = parse_probe({"httpGet": {"path": "/healthz", "port": "http"}})
    assert spec == ProbeSpec("httpGet", {"path": "/healthz", "port": "http"}, 0.0, 10.0, 1.0, 1, 3)


def test_explicit_settings_are_kept() -> None:
    spec = parse_probe({
        "tcpSocket": {"port": 5432}, "initialDelaySeconds": 2, "periodSeconds": 1, "timeoutSeconds": 3,
        "successThreshold": 2, "failureThreshold": 5,
    })  # fmt: skip
    assert spec == ProbeSpec("tcpSocket", {"port": 5432}, 2.0, 1.0, 3.0, 2, 5)


def test_an_unsupported_handler_is_kept_so_that_it_fails_visibly() -> None:
    spec = parse_probe({"grpc": {"port": 9000}})
    assert spec is not None
    assert spec.kind == "grpc"


def test_ports_by_number_or_by_name() -> None:
    assert resolve_port(9090, CONTAINER) == 9090
    assert resolve_port("9091", CONTAINER) == 9091
    assert resolve_port("http", CONTAINER) == 8080
    with pytest.raises(ValueError, match="no container port named 'grpc'"):
        resolve_port("grpc", CONTAINER)


def test_readiness_needs_success_threshold_successes_in_a_row() -> None:
    tracker = ProbeTracker(ProbeSpec("exec", {}, success_threshold=2, failure_threshold=2), ok=False)
    assert tracker.record(True, "", 1.0) is False
    assert tracker.record(False, "", 2.0) is False
    assert tracker.record(True, "", 3.0) is False
    assert tracker.record(True, "", 4.0) is True
    assert tracker.record(False, "", 5.0) is True  # one failure is below the threshold
    assert tracker.record(False, "down", 6.0) is False
    assert tracker.last_message == "down"


def test_probes_are_scheduled_after_the_initial_delay_then_every_period() -> None:
    tracker = ProbeTracker(ProbeSpec("exec", {}, initial_delay=5.0, period=2.0), ok=True)
    tracker.schedule_from(100.0)
    assert not tracker.due(104.9)
    assert tracker.due(105.0)
    tracker.record(True, "", 105.0)
    assert not tracker.due(106.9)
    assert tracker.due(107.0)
