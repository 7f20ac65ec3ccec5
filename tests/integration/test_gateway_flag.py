"""The start flag is the authority: two real gateway processes follow it both ways, and buy for real."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from flashsale_dev.gateway_process import GatewayLauncher, SaleSetup, bearer, status, status_in
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.pytest_plugin import PostgresSchema, RedisDatabase
from flashsale_dev.waiting import wait_for
from flashsale_sale import gate
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
    )


@pytest.fixture
def launch(platform: LocalPlatform, tmp_path: Path) -> Iterator[GatewayLauncher]:
    launcher = GatewayLauncher(platform.reserve_port, tmp_path, os.environ)
    yield launcher
    launcher.stop_all()


def test_gateways_refuse_before_the_flip_accept_after_it_and_refuse_again_after_a_flip_back(
    sale: SaleSetup, launch: GatewayLauncher, redis_db: RedisDatabase
) -> None:
    keys = SaleKeys(sale.sale_id)
    assert gate.prewarm(redis_db.client, keys, sale.stock)
    gateways = [launch(sale), launch(sale)]
    path = order_path(sale.order_path_key.encode(), sale.sale_id)

    for index, gateway in enumerate(gateways):
        before = status(gateway)
        assert before["state"] == "scheduled"
        assert before["orderPath"] is None
        answer = httpx.post(gateway.url + path, headers=bearer(sale, f"early-{index}"), timeout=10)
        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"
    assert gate.remaining(redis_db.client, keys) == sale.stock  # nobody got through

    gate.set_open(redis_db.client, keys, True)
    for gateway in gateways:
        live = wait_for(partial(status_in, gateway, "live"), what="state live")
        assert live["orderPath"] == path
    for index, gateway in enumerate(gateways):
        answer = httpx.post(gateway.url + path, headers=bearer(sale, f"buyer-{index}"), timeout=30)
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert body["state"] == "reserved"
        assert body["quantity"] == 1
        assert body["expiresAt"].endswith("Z")
    assert gate.remaining(redis_db.client, keys) == sale.stock - 2

    gate.set_open(redis_db.client, keys, False)
    for gateway in gateways:
        wait_for(partial(status_in, gateway, "scheduled"), what="state scheduled (flag off, before start)")
        assert status(gateway)["orderPath"] is None
        answer = httpx.post(gateway.url + path, headers=bearer(sale, "late"), timeout=10)
        assert answer.status_code == 404
    assert gate.remaining(redis_db.client, keys) == sale.stock - 2


def test_repeat_clicks_get_the_same_reservation_on_either_gateway_and_the_owner_can_read_it(
    sale: SaleSetup, launch: GatewayLauncher, redis_db: RedisDatabase
) -> None:
    keys = SaleKeys(sale.sale_id)
    gate.prewarm(redis_db.client, keys, sale.stock)
    gate.set_open(redis_db.client, keys, True)
    first, second = launch(sale), launch(sale)
    path = order_path(sale.order_path_key.encode(), sale.sale_id)
    wait_for(lambda: status(first)["state"] == "live" and status(second)["state"] == "live", what="live")

    answers = [
        httpx.post(g.url + path, headers=bearer(sale, "alice"), timeout=30) for g in (first, first, second)
    ]
    assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]
    reservation = answers[0].json()["reservationId"]
    assert {a.json()["reservationId"] for a in answers} == {reservation}
    assert gate.remaining(redis_db.client, keys) == sale.stock - 1  # one unit, however many clicks

    mine = httpx.get(f"{first.url}/api/orders/{reservation}", headers=bearer(sale, "alice"), timeout=10)
    assert mine.status_code == 200, mine.text
    assert mine.json()["state"] == "reserved"
    assert mine.json()["reservationId"] == reservation
    theirs = httpx.get(f"{first.url}/api/orders/{reservation}", headers=bearer(sale, "mallory"), timeout=10)
    assert theirs.status_code == 404
    assert theirs.json()["error"] == "not_found"


def test_the_last_units_sell_out_and_then_every_attempt_gets_410(
    sale: SaleSetup, launch: GatewayLauncher, redis_db: RedisDatabase
) -> None:
    sale.stock = 3
    sale.per_user_limit = 2
    keys = SaleKeys(sale.sale_id)
    gate.prewarm(redis_db.client, keys, sale.stock)
    gate.set_open(redis_db.client, keys, True)
    gateway = launch(sale)
    path = order_path(sale.order_path_key.encode(), sale.sale_id)
    wait_for(lambda: status(gateway)["state"] == "live", what="live")

    with gateway.client() as client:
        two = client.post(path, headers=bearer(sale, "u1"), json={"quantity": 2})
        assert two.status_code == 202, two.text
        assert two.json()["quantity"] == 2
        too_many = client.post(path, headers=bearer(sale, "u2"), json={"quantity": 2})
        assert too_many.status_code == 409
        assert too_many.json()["error"] == "insufficient_stock"
        last = client.post(path, headers=bearer(sale, "u3"), json={"quantity": 1})
        assert last.status_code == 202, last.text
        gone = client.post(path, headers=bearer(sale, "u4"))
        assert gone.status_code == 410
        assert gone.json()["error"] == "sold_out"
        assert (
            client.post(path, headers=bearer(sale, "u1")).json()["reservationId"]
            == two.json()["reservationId"]
        )
        wait_for(lambda: client.get("/api/status").json()["state"] == "soldout", what="state soldout")
        assert client.get("/api/status").json()["orderPath"] is None
    assert gate.remaining(redis_db.client, keys) == 0
