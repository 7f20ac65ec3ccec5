"""The app in process, without its lifespan (no Redis, no Kafka): routes, errors, caching headers, OpenAPI.

The public port's app and the admin port's app (flashsale_gateway.admin) are called through ASGI here;
tests/unit/test_gateway_admin_server.py serves the admin app over a real socket.
"""

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


@pytest.fixture(scope="module")
def admin(app: FrontLayer) -> Any:
    assert app.admin is not None
    return app.admin.app


def call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
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
        ("PUT", "/", 405, "method_not_allowed"),
        ("GET", "/api/orders/x", 401, "unauthorized"),
        ("POST", "/api/orders/x/pay", 401, "unauthorized"),
        ("GET", "/api/orders/x/pay", 405, "method_not_allowed"),
        ("GET", "/healthz/", 404, "not_found"),  # a trailing slash: not a redirect built from the Host
        ("GET", "/api/status/", 404, "not_found"),
    ],
)
def test_every_error_is_json(app: FrontLayer, method: str, path: str, status: int, code: str) -> None:
    answer = call(app, method, path)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"] == code
    assert isinstance(answer.json()["message"], str)


@pytest.mark.parametrize("path", ["/metrics", "/readyz", "/healthz", "/openapi.json", "/docs"])
def test_operational_surfaces_are_unknown_on_the_public_port(app: FrontLayer, path: str) -> None:
    answer = call(app, "GET", path)
    assert answer.status_code == 404
    assert answer.json() == {"error": "not_found", "message": "Not Found"}


def test_the_admin_document_lists_every_public_route_with_its_answers(admin: Any) -> None:
    document = call(admin, "GET", "/openapi.json").json()
    assert set(document["paths"]) == {
        "/",
        "/status.js",
        "/api/status",
        "/api/buy/{orderKey}",
        "/api/orders/{reservationId}",
        "/api/orders/{reservationId}/pay",
    }
    buy = document["paths"]["/api/buy/{orderKey}"]["post"]
    assert set(buy["responses"]) == {"202", "401", "404", "409", "410", "413", "422", "429", "503"}
    assert buy["responses"]["429"]["headers"]["Retry-After"]["required"] is True
    body = buy["requestBody"]["content"]["application/json"]["schema"]
    assert (body["properties"]["quantity"]["minimum"], body["properties"]["quantity"]["maximum"]) == (1, 1)
    assert body["required"] == ["quantity"]  # exactly {"quantity": n}, or no body at all
    assert body["additionalProperties"] is False
    assert buy["requestBody"]["required"] is False
    assert "HTTPValidationError" not in document["components"]["schemas"]
    pay = document["paths"]["/api/orders/{reservationId}/pay"]["post"]
    assert set(pay["responses"]) == {"200", "401", "403", "404", "409", "422", "503"}
    assert pay["responses"]["409"]["headers"]["Retry-After"]["required"] is False


def test_healthz_and_metrics_answer_on_the_admin_port_without_the_middleware(
    app: FrontLayer, admin: Any
) -> None:
    assert call(admin, "GET", "/healthz").json() == {"status": "ok"}
    assert call(admin, "POST", "/healthz").json()["error"] == "method_not_allowed"
    assert call(admin, "GET", "/nowhere").json()["error"] == "not_found"
    call(app, "GET", "/api/status")
    call(app, "GET", "/metrics")  # the public port: unknown, counted as `other`
    metrics = call(admin, "GET", "/metrics").text
    assert 'flashsale_gateway_requests_total{outcome="ok",route="status",sale="drop"}' in metrics
    assert 'flashsale_gateway_requests_total{outcome="404",route="other",sale="drop"}' in metrics
    assert 'flashsale_gateway_request_seconds_bucket{le="+Inf",route="status",sale="drop"}' in metrics


@pytest.mark.parametrize("path", ["/", "/status.js", "/api/status"])
def test_every_get_route_answers_head_with_the_same_status_and_headers(app: FrontLayer, path: str) -> None:
    """RFC 9110 asks every server for HEAD wherever it has GET (uptime checks and CDNs use it); the admin
    port's server answers HEAD as GET itself (tests/unit/test_gateway_admin_server.py)."""
    get, head = call(app, "GET", path), call(app, "HEAD", path)
    assert head.status_code == get.status_code == 200
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]


def test_head_where_only_post_is_allowed_is_405(app: FrontLayer) -> None:
    answer = call(app, "HEAD", "/api/orders/x/pay")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
