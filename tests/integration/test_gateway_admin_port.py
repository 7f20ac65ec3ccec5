"""Operational surfaces off the public port: a real gateway serves health, readiness, metrics and its
OpenAPI document on its admin port only; on the public port they are unknown paths."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from flashsale_dev.sale import FLASHSALE, LocalSale

ADMIN_PATHS = ("/metrics", "/readyz", "/healthz", "/openapi.json")


def test_the_public_port_answers_404_json_for_every_operational_surface(sale: LocalSale) -> None:
    [gateway] = sale.go_live()
    with gateway.client() as client:
        for path in ADMIN_PATHS:
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert answer.headers["content-type"] == "application/json", path
            assert answer.json()["error"] == "not_found", path
        assert client.get("/api/status").json()["state"] == "live"  # the crowd's routes are still here


def test_the_admin_port_serves_probes_metrics_and_the_public_document(sale: LocalSale) -> None:
    [gateway] = sale.go_live()
    with gateway.client() as public:
        public.get("/api/status")
    with httpx.Client(base_url=gateway.admin_url, timeout=30) as admin:
        assert admin.get("/healthz").json() == {"status": "ok"}
        ready = admin.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"redis": True, "kafka": True, "config": True}}
        document = admin.get("/openapi.json").json()
        assert "/api/buy/{orderKey}" in document["paths"]
        assert not set(ADMIN_PATHS) & set(document["paths"])  # it documents the public port
        metrics = admin.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        counted = f'flashsale_gateway_requests_total{{outcome="%s",route="%s",sale="{sale.sale_name}"}}'
        assert counted % ("ok", "status") in metrics.text
        assert counted % ("200", "readyz") in metrics.text  # the admin port's requests are counted too
        assert admin.get("/api/status").status_code == 404  # and the public routes are not here


def test_the_admin_port_stops_answering_with_the_gateway(sale: LocalSale) -> None:
    gateway = sale.start_gateway()
    gateway.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gateway.admin_url}/healthz", timeout=10)


def test_an_admin_port_equal_to_the_public_port_is_refused_at_start(sale: LocalSale) -> None:
    env = sale.env(FLASHSALE_PORT="8123", FLASHSALE_ADMIN_PORT="8123")
    done = subprocess.run(
        [str(FLASHSALE), "gateway"], capture_output=True, text=True, check=False, timeout=120, env=env
    )
    assert done.returncode == 2, done.stderr
    assert "FLASHSALE_ADMIN_PORT must differ from FLASHSALE_PORT" in done.stderr
