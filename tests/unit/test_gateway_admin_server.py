"""The admin port's small HTTP/1.1 server: a real loopback socket in front of a tiny ASGI app."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from flashsale_gateway.admin_server import AdminServer, BadRequest, parse_head
from flashsale_gateway.asgi import Receive, Scope, Send


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Says what it saw: method, path, query and body."""
    message = await receive()
    body = f"{scope['method']} {scope['path']} {scope['query_string'].decode()} {message['body'].decode()}"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body.encode(), "more_body": True})
    await send({"type": "http.response.body", "body": b"!"})


async def broken(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("boom")


async def started(app: Any, seen: list[tuple[str, int]] | None = None) -> AdminServer:
    def counted(path: str, status: int, seconds: float) -> None:
        assert seconds >= 0
        if seen is not None:
            seen.append((path, status))

    server = AdminServer(app, "127.0.0.1", 0, counted)
    await server.start()
    return server


async def raw(server: AdminServer, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 30)  # the server closes the connection
    writer.close()
    return answer


def test_requests_on_one_kept_alive_connection_reach_the_app_and_are_counted() -> None:
    async def go() -> None:
        seen: list[tuple[str, int]] = []
        server = await started(echo, seen)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client:
                first = await client.get("/metrics?x=1")
                second = await client.post("/readyz", content=b"hello")
            assert (first.status_code, first.text) == (200, "GET /metrics x=1 !")
            assert second.text == "POST /readyz  hello!"
            assert first.headers["connection"] == "keep-alive"
            assert first.headers["content-length"] == str(len(first.content))
            assert seen == [("/metrics", 200), ("/readyz", 200)]
        finally:
            await server.stop()

    asyncio.run(go())


def test_connection_close_and_http_1_0_end_the_connection() -> None:
    async def go() -> None:
        server = await started(echo)
        try:
            closed = await raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert closed.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"connection: close" in closed
            assert closed.endswith(b"GET /healthz  !")
            old = await raw(server, b"GET /healthz HTTP/1.0\r\n\r\n")
            assert b"connection: close" in old
            head = await raw(server, b"HEAD /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
            assert head.endswith(b"\r\n\r\n")  # headers only
        finally:
            await server.stop()

    asyncio.run(go())


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET /x HTTP/1.1\r\nno colon here\r\n\r\n",
        b"POST /x HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n",
    ],
)
def test_a_request_it_cannot_read_gets_a_json_4xx_and_the_connection_closes(request_bytes: bytes) -> None:
    async def go() -> bytes:
        server = await started(echo)
        try:
            return await raw(server, request_bytes)
        finally:
            await server.stop()

    answer = asyncio.run(go())
    assert answer.split(b" ", 2)[1] in (b"400", b"431")
    assert b"connection: close" in answer
    assert answer.endswith(b"}")
    assert b'"error": "bad_request"' in answer


def test_an_app_that_raises_answers_500_json_and_the_server_keeps_serving() -> None:
    async def go() -> None:
        server = await started(broken)
        try:
            for _ in range(2):
                answer = await raw(server, b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n")
                assert answer.startswith(b"HTTP/1.1 500 ")
                assert b'"error": "internal"' in answer
        finally:
            await server.stop()

    asyncio.run(go())


def test_stop_closes_idle_kept_alive_connections() -> None:
    async def go() -> None:
        server = await started(echo)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /a HTTP/1.1\r\n\r\n")
        await reader.readuntil(b"!")
        await server.stop()
        assert await asyncio.wait_for(reader.read(), 30) == b""  # closed by the server
        writer.close()

    asyncio.run(go())


def test_parse_head_lower_cases_header_names_and_keeps_values() -> None:
    head = b"GET /metrics?a=b HTTP/1.1\r\nHost: 10.0.0.1:9090\r\nAccept: text/plain\r\n\r\n"
    assert parse_head(head) == (
        "GET",
        "/metrics?a=b",
        "HTTP/1.1",
        [(b"host", b"10.0.0.1:9090"), (b"accept", b"text/plain")],
    )
    for bad in (b"GET metrics HTTP/1.1\r\n\r\n", b"G-T / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\n :x\r\n\r\n"):
        with pytest.raises(BadRequest):
            parse_head(bad)
