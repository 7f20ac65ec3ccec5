"""A minimal HTTP/1.1 server for the admin port, in the gateway worker's own event loop.

Granian listens on one address per server, and a second granian (or uvicorn) would be a second
process, or would install its own signal handlers and timers in the worker. The admin port serves
a handful of small GETs (the kubelet's probes, Prometheus' scrape, the OpenAPI document), so
`asyncio.start_server` with this handler is enough: it drives an ASGI app with one request at a
time per connection, keep-alive, bodies up to 64 KiB, and nothing on the buy path changes (no
task, no timer on the loop while nobody calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from time import perf_counter
from typing import Final
from urllib.parse import unquote

from flashsale_gateway.asgi import ASGIApp, Message

log = logging.getLogger(__name__)

MAX_HEAD_BYTES: Final = 16 * 1024
MAX_BODY_BYTES: Final = 64 * 1024
IDLE_SECONDS: Final = 30.0  # a keep-alive connection with no request this long is closed

Counted = Callable[[str, int, float], None]  # (path, status, seconds): the admin requests' metrics


class BadRequest(Exception):
    """The request cannot be parsed; answered 400 and the connection is closed."""


class AdminServer:
    def __init__(self, app: ASGIApp, host: str, port: int, counted: Counted | None = None) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._counted = counted
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def app(self) -> ASGIApp:
        return self._app

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one the system chose for 0)."""
        assert self._server is not None, "not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self._host, self._port, limit=MAX_HEAD_BYTES, backlog=64
        )
        log.info("admin port (health, readiness, metrics, OpenAPI) on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serves one request; True when the connection stays open for another."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_SECONDS)
        except asyncio.LimitOverrunError:
            await _write_error(writer, 431, "request head too large")
            return False
        except asyncio.IncompleteReadError as eof:
            if eof.partial.strip():
                await _write_error(writer, 400, "incomplete request")
            return False
        started = perf_counter()
        try:
            method, target, version, headers = parse_head(head)
            body = await _read_body(reader, headers)
        except BadRequest as bad:
            await _write_error(writer, 400, str(bad))
            return False
        answer = await self._call(method, target, version, headers, body)
        keep_alive = _keep_alive(version, headers)
        await _write_response(writer, answer, keep_alive=keep_alive, head_only=method == "HEAD")
        if self._counted is not None:
            self._counted(target.partition("?")[0], answer[0], perf_counter() - started)
        return keep_alive

    async def _call(
        self, method: str, target: str, version: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        path, _, query = target.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": version.removeprefix("HTTP/"),
            "method": method,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "server": (self._host, self._port),
            "client": None,
        }
        sent_body = False

        async def receive() -> Message:
            nonlocal sent_body
            if sent_body:
                return {"type": "http.disconnect"}
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}

        start: Message = {}
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        try:
            await self._app(scope, receive, send)
        except Exception:
            log.exception("admin request %s %s failed", method, path)
            return _error_parts(500, "internal error")
        if not start:
            return _error_parts(500, "no answer")
        return int(start["status"]), list(start.get("headers", [])), b"".join(chunks)


def parse_head(head: bytes) -> tuple[str, str, str, list[tuple[bytes, bytes]]]:
    """(method, target, version, headers with lower-cased names) of a request head (pure)."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise BadRequest("malformed request line") from None
    if version not in ("HTTP/1.0", "HTTP/1.1") or not target.startswith("/") or not method.isalpha():
        raise BadRequest("malformed request line")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest("malformed header")
        headers.append((name.lower().encode("latin-1"), value.strip().encode("latin-1")))
    return method, target, version, headers


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for key, value in headers if key == name), None)


def _keep_alive(version: str, headers: list[tuple[bytes, bytes]]) -> bool:
    connection = (_header(headers, b"connection") or b"").lower()
    return b"close" not in connection if version == "HTTP/1.1" else b"keep-alive" in connection


async def _read_body(reader: asyncio.StreamReader, headers: list[tuple[bytes, bytes]]) -> bytes:
    if _header(headers, b"transfer-encoding") is not None:
        raise BadRequest("chunked request bodies are not accepted here")
    length = _header(headers, b"content-length")
    if length is None:
        return b""
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        raise BadRequest("bad or too large Content-Length")
    return await asyncio.wait_for(reader.readexactly(int(length)), IDLE_SECONDS)


def _error_parts(status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    code = {400: "bad_request", 431: "bad_request", 500: "internal"}[status]
    body = json.dumps({"error": code, "message": message}).encode()
    return status, [(b"content-type", b"application/json")], body


async def _write_error(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    await _write_response(writer, _error_parts(status, message), keep_alive=False, head_only=False)


async def _write_response(
    writer: asyncio.StreamWriter,
    answer: tuple[int, list[tuple[bytes, bytes]], bytes],
    *,
    keep_alive: bool,
    head_only: bool,
) -> None:
    status, headers, body = answer
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}".encode()]
    lines += [
        key + b": " + value
        for key, value in headers
        if key.lower() not in (b"content-length", b"connection", b"transfer-encoding")
    ]
    lines.append(b"content-length: " + str(len(body)).encode())
    lines.append(b"connection: keep-alive" if keep_alive else b"connection: close")
    writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + (b"" if head_only else body))
    await writer.drain()
