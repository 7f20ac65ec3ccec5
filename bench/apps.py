"""The baselines the gateway is measured against: what the HTTP server and the framework cost alone.

`ceiling` is the least an ASGI application can do: one fixed answer, no routing, no parsing. The
FastAPI app is the same answer behind the framework's routing and response model. Both ignore the
request (the load generator still sends the gateway's request: POST, a bearer token, the order
path), so the difference to the gateway is the gateway's own work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_BODY = b'{"state":"ok"}'
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())],
}
_ANSWER = {"type": "http.response.body", "body": _BODY}


async def ceiling(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI callable: the same fixed answer to every HTTP request."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    await send(_START)
    await send(_ANSWER)


async def lifespan(receive: Receive, send: Send) -> None:
    """Answers the server's startup and shutdown (these apps hold nothing to open or close)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


fastapi_trivial = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@fastapi_trivial.post("/api/buy/{order_path}")
async def trivial(order_path: str) -> dict[str, str]:
    """A trivial endpoint on the gateway's route shape: a path parameter and a JSON answer."""
    return {"state": "ok"}
