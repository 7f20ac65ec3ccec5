"""The plain ASGI front layer: the crowd's routes answered before any framework routing.

`POST /api/buy/*`, `GET /status.js`, `GET /api/status` and `GET /` cost a few comparisons to route
here; the framework's routing alone would cost more than the whole sold-out answer. Everything else
(orders, payment, every error of an unknown route) is FastAPI's. The front layer also runs the
lifespan: the runtime's connections and the admin port (health, readiness, metrics, the OpenAPI
document: flashsale_gateway.admin) start and stop with the server.
"""

from __future__ import annotations

import logging
from time import perf_counter

from flashsale_gateway import answers
from flashsale_gateway.admin_server import AdminServer
from flashsale_gateway.answers import Answer
from flashsale_gateway.asgi import ASGIApp, BodyTooLarge, Message, Receive, Scope, Send, header, read_body
from flashsale_gateway.hot import HotRoutes
from flashsale_gateway.metrics import GatewayMetrics
from flashsale_gateway.parsing import MAX_BODY_BYTES
from flashsale_gateway.runtime import Runtime

log = logging.getLogger(__name__)

BUY_PREFIX = "/api/buy/"


class FrontLayer:
    def __init__(
        self,
        runtime: Runtime,
        hot: HotRoutes,
        api: ASGIApp,
        metrics: GatewayMetrics,
        admin: AdminServer | None = None,
    ) -> None:
        self._runtime = runtime
        self._admin = admin
        self._hot = hot
        self._api = api
        self._metrics = metrics
        self._answered = metrics.answered
        self._attempt = hot.buy_path.attempt  # bound once: the buy path's every request

    @property
    def admin(self) -> AdminServer | None:
        """The admin port's server (started by the lifespan)."""
        return self._admin

    @property
    def runtime(self) -> Runtime:
        """What this app serves (for in-process drivers: bench/buy_inprocess.py)."""
        return self._runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method = scope["method"]
            path = scope["path"]
            if method == "POST" and path.startswith(BUY_PREFIX):
                await self._buy(scope, receive, send, path)
                return
            if method == "GET":
                if path == "/status.js":
                    await self._send("status_js", self._hot.status_js(), send, perf_counter())
                    return
                if path == "/api/status":
                    await self._send("status", self._hot.status_json(), send, perf_counter())
                    return
                if path == "/":
                    started = perf_counter()
                    await self._send("page", self._hot.page(header(scope, b"if-none-match")), send, started)
                    return
            await self._framework(scope, receive, send)
            return
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._api(scope, receive, send)

    async def _framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's routes, counted by route and status (they are rare: a closure per request is fine)."""
        started = perf_counter()
        status = 500

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._api(scope, receive, counted)
        finally:
            self._answered(_route_of(scope["path"]), str(status), perf_counter() - started)

    async def _buy(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        started = perf_counter()
        authorization = header(scope, b"authorization")
        answer = self._hot.early(path, authorization)
        if answer is None:
            try:
                body = await read_body(scope, receive, MAX_BODY_BYTES)
            except BodyTooLarge:
                answer = answers.TOO_LARGE
            else:
                answer = await self._attempt(authorization, body)
        await send(answer.start_message)
        await send(answer.body_message)
        self._answered("buy", answer.outcome, perf_counter() - started)

    async def _send(self, route: str, answer: Answer, send: Send, started: float) -> None:
        await send(answer.start_message)
        await send(answer.body_message)
        self._answered(route, answer.outcome, perf_counter() - started)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._runtime.start()
                    if self._admin is not None:
                        await self._admin.start()
                except Exception as error:
                    log.exception("gateway start failed")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    if self._admin is not None:
                        await self._admin.stop()  # first: readiness and scrapes end with the gateway
                    await self._runtime.stop()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return


def _route_of(path: str) -> str:
    """A bounded label for a framework route (never the raw path: ids would explode the series).

    /healthz, /readyz, /metrics and /openapi.json are the admin port's (counted there); here they are
    unknown paths like any other.
    """
    if path.startswith("/api/orders/"):
        return "pay" if path.endswith("/pay") else "orders"
    return "other"
