"""The admin port's routes: health, readiness, metrics and the OpenAPI document, never on the public port.

`/readyz` touches Redis and Kafka on every call and `/metrics` tells the sale's every count, so the
crowd must not reach them: they live on `FLASHSALE_ADMIN_PORT` (9090), which the kubelet's probes
and Prometheus use and the LoadBalancer Service does not expose; the NetworkPolicy lets only the
platform's scrapers in (docs/gateway.md, docs/operator.md). On the public port these paths are
unknown: 404 `not_found` like any other.

The OpenAPI document describes the public port (what clients and the fuzzer call); it is served
here because it is an operational surface too.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from flashsale_gateway import answers, schemas
from flashsale_gateway.admin_server import AdminServer
from flashsale_gateway.api import _install_error_handlers
from flashsale_gateway.runtime import Runtime

ROUTES: Final = {
    "/healthz": "healthz",
    "/readyz": "readyz",
    "/metrics": "metrics",
    "/openapi.json": "openapi",
}


def build_admin_api(runtime: Runtime, public: FastAPI) -> FastAPI:
    app = FastAPI(title="FlashSale gateway admin", docs_url=None, redoc_url=None, openapi_url=None)
    _install_error_handlers(app)

    @app.get("/healthz", response_model=schemas.Health)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", response_model=schemas.Readiness)
    async def readyz() -> Response:
        checks = await runtime.readiness()
        if all(checks.values()):
            answer = answers.json_answer(200, {"status": "ready", "checks": checks}, "ok")
        else:
            failing = ", ".join(name for name, ok in checks.items() if not ok)
            payload = {"error": "not_ready", "message": f"not ready: {failing}", "checks": checks}
            answer = answers.json_answer(503, payload, "not_ready")
        return Response(answer.body, answer.status, answer.header_map())

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json")
    async def openapi() -> dict[str, Any]:
        return public.openapi()  # the public port's document

    return app


def admin_server(runtime: Runtime, public: FastAPI) -> AdminServer:
    """The admin port of this gateway, counted in the same request metrics (route healthz, ...)."""
    settings = runtime.settings
    answered = runtime.metrics.answered

    def counted(path: str, status: int, seconds: float) -> None:
        answered(ROUTES.get(path, "admin_other"), str(status), seconds)

    return AdminServer(build_admin_api(runtime, public), settings.bind_host, settings.admin_port, counted)
