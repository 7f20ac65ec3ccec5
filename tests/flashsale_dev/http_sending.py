"""Sending an `HttpRequest` (flashsale_dev.http_inputs) two ways, and reading what came back.

As an ASGI server would hand it to the app in this process (`asgi_scope`, `asgi_messages`), or as
raw HTTP/1.1 bytes on a socket to a real gateway (`send_on_socket`): raw, because an HTTP client
library refuses to send most of what the fuzzing draws (lying lengths, bodies cut short).
"""

from __future__ import annotations

import itertools
import socket
from dataclasses import dataclass
from typing import Any

from flashsale_dev.http_inputs import HttpRequest


def _pieces(request: HttpRequest) -> list[bytes]:
    edges = [0, *request.chunks, len(request.body)]
    return [request.body[a:b] for a, b in itertools.pairwise(edges)]


def asgi_scope(request: HttpRequest) -> dict[str, Any]:
    """What an ASGI server hands the app for this request (framing headers as a server passes them)."""
    headers = [(b"host", b"gateway"), *request.headers]
    if request.framing == "length":
        headers.append((b"content-length", str(len(request.body)).encode()))
    elif request.framing == "cut_short":
        headers.append((b"content-length", str(len(request.body) + 10).encode()))
    elif request.framing == "declared_less":
        headers.append((b"content-length", str(max(len(request.body) - 1, 0)).encode()))
    elif request.framing == "declared_junk":
        headers.append((b"content-length", request.declared))
    elif request.framing == "chunked":
        headers.append((b"transfer-encoding", b"chunked"))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": request.path,
        "raw_path": request.target.partition(b"?")[0],
        "root_path": "",
        "query_string": request.query,
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
    }


def asgi_messages(request: HttpRequest) -> list[dict[str, Any]]:
    """The body as the server's receive() gives it; `cut_short` ends in a disconnect before the end."""
    pieces = _pieces(request)
    if request.framing == "cut_short":
        sent = pieces[:-1] if len(pieces) > 1 else []
        return [{"type": "http.request", "body": piece, "more_body": True} for piece in sent] + [
            {"type": "http.disconnect"}
        ]
    return [
        {"type": "http.request", "body": piece, "more_body": index < len(pieces) - 1}
        for index, piece in enumerate(pieces)
    ]


def wire_bytes(request: HttpRequest) -> tuple[bytes, bool]:
    """The request as an HTTP/1.1 client would write it, and whether the client then stops sending."""
    lines = [
        f"{request.method} ".encode() + request.target + b" HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Connection: close",
    ]
    lines += [name + b": " + value for name, value in request.headers]
    body = request.body
    if request.framing == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
        body = (
            b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in _pieces(request) if piece)
            + b"0\r\n\r\n"
        )
    elif request.framing == "cut_short":  # declares more than it sends, then half-closes
        lines.append(b"Content-Length: %d" % (len(body) + 10))
    elif request.framing == "declared_less":  # the rest arrives as the start of another request
        lines.append(b"Content-Length: %d" % max(len(body) - 1, 0))
    else:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body, request.framing == "cut_short"


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]  # names lower-case; the first of repeated ones
    body: bytes


def send_on_socket(host: str, port: int, request: HttpRequest, timeout: float = 60.0) -> HttpAnswer | None:
    """One request on its own connection (`Connection: close`); the first answer, None if none came."""
    data, half_close = wire_bytes(request)
    received = bytearray()
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(data)
        if half_close:
            connection.shutdown(socket.SHUT_WR)
        while chunk := connection.recv(65536):
            received += chunk
    return parse_answer(bytes(received), head=request.method == "HEAD")


def parse_answer(received: bytes, *, head: bool) -> HttpAnswer | None:
    """The first HTTP/1.1 answer in `received` (Content-Length or chunked framing, or up to the end)."""
    head_part, found, rest = received.partition(b"\r\n\r\n")
    if not found:
        return None
    status_line, *lines = head_part.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    if head:
        body = b""
    elif "content-length" in headers:
        body = rest[: int(headers["content-length"])]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunked(rest)
    else:
        body = rest
    return HttpAnswer(int(status_line.split(" ")[1]), headers, body)


def _unchunked(data: bytes) -> bytes:
    body = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        body += data[:size]
        data = data[size + 2 :]
    return bytes(body)
