"""Bad input against a real gateway: every refusal is the right 4xx in JSON, and costs no stock."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flashsale_dev.gateway_process import GatewayLauncher, GatewayProcess, SaleSetup, bearer, status
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.pytest_plugin import PostgresSchema, RedisDatabase
from flashsale_dev.waiting import wait_for
from flashsale_sale import gate, tokens
from flashsale_sale.contract import SaleKeys, order_path
from flashsale_sale.db import migrate


@pytest.fixture
def sale(
    redis_db: RedisDatabase, kafka_topic: str, pg_schema: PostgresSchema, platform: LocalPlatform
) -> SaleSetup:
    with pg_schema.connect() as conn:
        migrate(conn)
    return SaleSetup(
        redis_url=redis_db.url,
        kafka_bootstrap_servers=platform.kafka.bootstrap_servers,
        database_url=pg_schema.url,
        kafka_topic=kafka_topic,
        per_user_limit=2,
    )


@pytest.fixture
def launch(platform: LocalPlatform, tmp_path: Path) -> Iterator[GatewayLauncher]:
    launcher = GatewayLauncher(platform.reserve_port, tmp_path, os.environ)
    yield launcher
    launcher.stop_all()


def _live(sale: SaleSetup, launch: GatewayLauncher, redis_db: RedisDatabase) -> GatewayProcess:
    keys = SaleKeys(sale.sale_id)
    gate.prewarm(redis_db.client, keys, sale.stock)
    gate.set_open(redis_db.client, keys, True)
    gateway = launch(sale)
    wait_for(lambda: status(gateway)["state"] == "live", what="state live")
    return gateway


def test_bad_tokens_get_401_in_json_and_take_no_stock(
    sale: SaleSetup, launch: GatewayLauncher, redis_db: RedisDatabase
) -> None:
    gateway = _live(sale, launch, redis_db)
    path = order_path(sale.order_path_key.encode(), sale.sale_id)
    good = tokens.mint(sale.user_token_key.encode(), "eve")
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    expired = tokens.mint(sale.user_token_key.encode(), "eve", ttl_seconds=1, now=time.time() - 60)
    wrong_key = tokens.mint(b"some-other-platform-key-000", "eve")
    headers = {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {good}"},
        "malformed": {"Authorization": "Bearer not-a-token"},
        "forged": {"Authorization": f"Bearer {forged}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "wrong key": {"Authorization": f"Bearer {wrong_key}"},
        "forged user": {"Authorization": f"Bearer {good.replace('.eve.', '.bob.')}"},
    }
    with gateway.client() as client:
        for case, header in headers.items():
            answer = client.post(path, headers=header)
            assert answer.status_code == 401, case
            assert answer.headers["content-type"] == "application/json", case
            assert answer.json()["error"] == "unauthorized", case
            assert answer.json()["message"], case
    assert gate.remaining(redis_db.client, SaleKeys(sale.sale_id)) == sale.stock


def test_guessed_paths_get_404_before_and_during_the_sale(
    sale: SaleSetup, launch: GatewayLauncher, redis_db: RedisDatabase
) -> None:
    keys = SaleKeys(sale.sale_id)
    gate.prewarm(redis_db.client, keys, sale.stock)
    gateway = launch(sale)
    real = order_path(sale.order_path_key.encode(), sale.sale_id)
    guesses = ["/api/buy/", "/api/buy/x", real + "x", real[:-1], real.upper(), "/api/buy/" + sale.sale_id]
    with gateway.client() as client:
        for phase in ("before", "during"):
            for guess in guesses:
                answer = client.post(guess, headers=bearer(sale, "guesser"))
                assert answer.status_code == 404, (phase, guess)
                assert answer.json()["error"] == "not_found"
            if phase == "before":
                assert client.post(real, headers=bearer(sale, "guesser")).status_code == 404
                gate.set_open(redis_db.client, keys, True)
                wait_for(lambda: client.get("/api/status").json()["state"] == "live", what="live")
    assert gate.remaining(redis_db.client, keys) == sale.stock


def test_malformed_bodies_get_4xx_and_quantities_above_the_limit_get_422(
    sale: SaleSetup, launch: GatewayLauncher, redis_db: RedisDatabase
) -> None:
    gateway = _live(sale, launch, redis_db)
    path = order_path(sale.order_path_key.encode(), sale.sale_id)
    bodies: dict[str, tuple[bytes, int]] = {
        "not json": (b"quantity=1", 422),
        "broken json": (b'{"quantity": ', 422),
        "not an object": (b"[1]", 422),
        "string quantity": (b'{"quantity": "1"}', 422),
        "boolean quantity": (b'{"quantity": true}', 422),
        "zero": (b'{"quantity": 0}', 422),
        "above the limit": (b'{"quantity": 3}', 422),
        "oversized": (b'{"quantity": 1, "pad": "' + b"x" * 20_000 + b'"}', 413),
        "binary": (bytes(range(256)), 422),
    }
    with gateway.client() as client:
        for case, (body, expected) in bodies.items():
            headers = bearer(sale, "picky") | {"Content-Type": "application/json"}
            answer = client.post(path, content=body, headers=headers)
            assert answer.status_code == expected, (case, answer.text)
            assert answer.json()["error"] in {"invalid_request", "payload_too_large"}, case
        unknown = client.get("/no/such/route")
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "not_found"
        wrong_method = client.delete("/api/status")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"] == "method_not_allowed"
        assert client.get("/api/orders/not-a-reservation", headers=bearer(sale, "picky")).status_code == 404
    assert gate.remaining(redis_db.client, SaleKeys(sale.sale_id)) == sale.stock


def test_a_failed_publish_returns_the_stock_at_once_and_answers_503(
    sale: SaleSetup, launch: GatewayLauncher, redis_db: RedisDatabase
) -> None:
    """The broker is up but the topic does not exist (auto-creation is off): no ack can ever come."""
    sale.kafka_topic = f"missing-{sale.sale_id}"
    gateway = _live(sale, launch, redis_db)
    path = order_path(sale.order_path_key.encode(), sale.sale_id)
    keys = SaleKeys(sale.sale_id)
    with gateway.client() as client:
        answer = client.post(path, headers=bearer(sale, "unlucky"))
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "unavailable"
        metrics = client.get("/metrics").text
    assert gate.remaining(redis_db.client, keys) == sale.stock
    assert redis_db.client.hlen(keys.pending) == 0
    assert redis_db.client.hlen(keys.buyers) == 0
    assert "flashsale_gateway_publish_failures_total" in metrics
    failures = [
        line for line in metrics.splitlines() if line.startswith("flashsale_gateway_publish_failures_total")
    ]
    assert failures
    assert float(failures[0].rsplit(" ", 1)[1]) == 1.0
