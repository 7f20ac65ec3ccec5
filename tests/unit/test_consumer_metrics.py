"""The consumer's metrics endpoint: /metrics in Prometheus' text format, /healthz from the loop's beat."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from flashsale_consumer import metrics as consumer_metrics
from flashsale_consumer.metrics import ConsumerMetrics, wsgi_app


def call(app: Callable[..., Iterable[bytes]], path: str) -> tuple[str, str]:
    status: list[str] = []

    def start_response(code: str, headers: list[Any], exc_info: Any = None) -> None:
        status.append(code)

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": ""}, start_response))
    return status[0], body.decode()


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_every_counter_is_labelled_by_sale_and_present_from_the_start() -> None:
    metrics = ConsumerMetrics("spring-sale")
    _, text = call(wsgi_app(metrics), "/metrics")
    for name in ("orders", "poison_messages", "db_errors", "redis_errors", "commit_errors"):
        assert samples(text, f"flashsale_consumer_{name}_total") == {(("sale", "spring-sale"),): 0.0}


def test_lag_follows_the_assignment() -> None:
    metrics = ConsumerMetrics("s")
    metrics.set_lag({0: 5, 1: 7})
    metrics.set_lag({1: 2})
    _, text = call(wsgi_app(metrics), "/metrics")
    assert samples(text, "flashsale_consumer_lag_messages") == {(("partition", "1"), ("sale", "s")): 2.0}


def test_healthz_turns_503_when_the_loop_stops_beating(monkeypatch: Any) -> None:
    metrics = ConsumerMetrics("s")
    app = wsgi_app(metrics)
    assert call(app, "/healthz") == ("200 OK", "ok\n")
    monkeypatch.setattr(consumer_metrics, "STALE_AFTER_SECONDS", -1.0)
    assert call(app, "/healthz")[0].startswith("503")
