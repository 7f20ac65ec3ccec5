"""The app in process, without its lifespan (no Redis, no Kafka): routes, errors, caching headers, OpenAPI."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from flashsale_gateway.app import build_app
from flashsale_gateway.front import FrontLayer
from flashsale_sale.contract import order_path
from flashsale_sale.settings import GatewaySettings

SETTINGS: dict[str, Any] = {
    "sale_name": "drop",
    "sale_id": "unit-sale",
    "stock": 5,
    "starts_at": datetime.now(UTC) + timedelta(hours=1),
    "ends_at": datetime.now(UTC) + timedelta(hours=2),
    "redis_url": "redis://127.0.0.1:1/0",
    "kafka_bootstrap_servers": "127.0.0.1:1",
    "database_url": "postgresql://nobody@127.0.0.1:1/none",
    "product_sku": "S-1",
    "product_name": "Thing <b>",
    "product_price": "5.00",
    "product_currency": "EUR",
    "sale_token_key": "u" * 20,
    "sale_payment_key": "p" * 20,
    "order_path_key": "o" * 20,
    "page_max_age_seconds": 45,
}


@pytest.fixture(scope="module")
def app() -> FrontLayer:
    return build_app(GatewaySettings(**SETTINGS))


def call(app: FrontLayer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def test_the_page_is_cacheable_with_a_strong_etag_and_304(app: FrontLayer) -> None:
    page = call(app, "GET", "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "public, max-age=45"
    etag = page.headers["etag"]
    assert etag.startswith('"')
    assert call(app, "GET", "/").headers["etag"] == etag  # computed once
    again = call(app, "GET", "/", headers={"If-None-Match": f'"other", {etag}'})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert call(app, "GET", "/", headers={"If-None-Match": '"other"'}).status_code == 200


def test_the_status_is_never_cached_and_hides_the_order_path_before_the_start(app: FrontLayer) -> None:
    status = call(app, "GET", "/api/status")
    assert status.headers["cache-control"] == "no-store"
    assert status.json()["state"] == "scheduled"
    assert status.json()["orderPath"] is None
    script = call(app, "GET", "/status.js")
    assert script.headers["cache-control"] == "no-store"
    assert script.headers["content-type"].startswith("text/javascript")
    assert b'"orderPath":null' in script.content


def test_orders_are_refused_with_404_while_the_sale_is_not_live(app: FrontLayer) -> None:
    real = order_path(SETTINGS["order_path_key"].encode(), SETTINGS["sale_id"])
    for path in (real, "/api/buy/guess"):
        answer = call(app, "POST", path, json={"quantity": 1})
        assert answer.status_code == 404
        assert answer.json() == {"error": "not_found", "message": "no such resource"}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("PUT", "/api/status", 405, "method_not_allowed"),
        ("POST", "/healthz", 405, "method_not_allowed"),
        ("GET", "/api/orders/x", 401, "unauthorized"),
        ("POST", "/api/orders/x/pay", 401, "unauthorized"),
        ("GET", "/api/orders/x/pay", 405, "method_not_allowed"),
    ],
)
def test_every_error_is_json(app: FrontLayer, method: str, path: str, status: int, code: str) -> None:
    answer = call(app, method, path)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"] == code
    assert isinstance(answer.json()["message"], str)


def test_the_document_lists_every_route_with_its_answers(app: FrontLayer) -> None:
    document = call(app, "GET", "/openapi.json").json()
    assert set(document["paths"]) == {
        "/",
        "/status.js",
        "/api/status",
        "/api/buy/{orderKey}",
        "/api/orders/{reservationId}",
        "/api/orders/{reservationId}/pay",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    }
    buy = document["paths"]["/api/buy/{orderKey}"]["post"]
    assert set(buy["responses"]) == {"202", "401", "404", "409", "410", "413", "422", "429", "503"}
    assert buy["responses"]["429"]["headers"]["Retry-After"]["required"] is True
    limit = buy["requestBody"]["content"]["application/json"]["schema"]["properties"]["quantity"]
    assert (limit["minimum"], limit["maximum"]) == (1, 1)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    pay = document["paths"]["/api/orders/{reservationId}/pay"]["post"]
    assert set(pay["responses"]) == {"200", "401", "403", "404", "409", "422", "503"}
    assert pay["responses"]["409"]["headers"]["Retry-After"]["required"] is False


def test_healthz_and_metrics_answer_without_the_middleware(app: FrontLayer) -> None:
    assert call(app, "GET", "/healthz").json() == {"status": "ok"}
    call(app, "GET", "/api/status")
    metrics = call(app, "GET", "/metrics").text
    assert 'flashsale_gateway_requests_total{outcome="ok",route="status",sale="drop"}' in metrics
    assert 'flashsale_gateway_requests_total{outcome="200",route="healthz",sale="drop"}' in metrics
    assert 'flashsale_gateway_request_seconds_bucket{le="+Inf",route="status",sale="drop"}' in metrics
