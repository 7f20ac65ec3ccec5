"""The few ASGI types and helpers the plain front layer needs (no framework on the hot path)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (names arrive lower-cased in ASGI)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class BodyTooLarge(Exception):
    """The request body is larger than the caller is willing to read."""


class BodyCutShort(Exception):
    """The client went away before its body ended: what it meant to send is unknown."""


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, refusing early (from Content-Length) or while reading, past `limit` bytes.

    A disconnect before the last chunk raises BodyCutShort: a truncated buy body must not read as
    an empty one (quantity 1), and a buy nobody waits for must not take stock."""
    declared = header(scope, b"content-length")
    if declared == b"0":
        return b""  # nothing to read: no trip through the server for an empty body message
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise BodyCutShort
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
