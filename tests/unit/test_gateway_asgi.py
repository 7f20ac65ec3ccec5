"""Reading a buy request's body in the plain ASGI front layer (pure: scripted receive calls)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from flashsale_gateway.asgi import BodyTooLarge, Message, read_body


def scope(*headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {"type": "http", "headers": list(headers)}


def script(*messages: Message) -> tuple[Callable[[], Awaitable[Message]], list[Message]]:
    handed: list[Message] = []

    async def receive() -> Message:
        handed.append(messages[len(handed)])
        return handed[-1]

    return receive, handed


def test_a_declared_empty_body_is_not_read_at_all() -> None:
    receive, handed = script()
    assert asyncio.run(read_body(scope((b"content-length", b"0")), receive, 4096)) == b""
    assert handed == []


def test_a_body_in_chunks_is_joined() -> None:
    receive, handed = script(
        {"type": "http.request", "body": b'{"quan', "more_body": True},
        {"type": "http.request", "body": b'tity":2}', "more_body": False},
    )
    assert asyncio.run(read_body(scope((b"content-length", b"14")), receive, 4096)) == b'{"quantity":2}'
    assert len(handed) == 2


@pytest.mark.parametrize("declared", [b"4097", b"-1", b"12abc"])
def test_a_body_declared_too_large_or_malformed_is_refused_before_reading(declared: bytes) -> None:
    receive, handed = script()
    with pytest.raises(BodyTooLarge):
        asyncio.run(read_body(scope((b"content-length", declared)), receive, 4096))
    assert handed == []


def test_an_undeclared_body_is_refused_once_it_grows_past_the_limit() -> None:
    receive, _ = script(*[{"type": "http.request", "body": b"x" * 1000, "more_body": True}] * 5)
    with pytest.raises(BodyTooLarge):
        asyncio.run(read_body(scope(), receive, 4096))
