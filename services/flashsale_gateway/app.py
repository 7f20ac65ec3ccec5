"""The gateway's ASGI application, built once from the settings: the plain front over FastAPI."""

from __future__ import annotations

import logging

from flashsale_gateway.admin import admin_server
from flashsale_gateway.api import build_api
from flashsale_gateway.front import FrontLayer
from flashsale_gateway.hot import HotRoutes
from flashsale_gateway.metrics import GatewayMetrics
from flashsale_gateway.runtime import Runtime
from flashsale_sale.settings import GatewaySettings


def build_app(settings: GatewaySettings) -> FrontLayer:
    """Builds everything (no connection is opened, no port bound, before the lifespan starts it)."""
    _log_to_stderr()
    metrics = GatewayMetrics(settings.sale_name)
    runtime = Runtime(settings, metrics)
    hot = HotRoutes(settings, runtime.board, runtime.buy, runtime.order_path)
    api = build_api(runtime, hot)
    return FrontLayer(runtime, hot, api, metrics, admin_server(runtime, api))


def _log_to_stderr() -> None:
    """The gateway's own lines beside granian's: one format, INFO and up, to stderr (the pod log)."""
    logger = logging.getLogger("flashsale_gateway")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(asctime)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
