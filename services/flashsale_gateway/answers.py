"""Answers as prebuilt bytes: the hot paths send one of these without building anything per request.

Every error is JSON `{"error": code, "message": text}`; the codes are part of the public contract.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any, Final

from flashsale_gateway.asgi import Send

JSON: Final = b"application/json"
# One encoder for every answer: json.dumps with any non-default argument builds a new one per call.
_compact_json: Final = json.JSONEncoder(separators=(",", ":")).encode
NO_STORE: Final = (b"cache-control", b"no-store")


class Answer:
    """A whole HTTP answer with its two ASGI messages built once: sending it builds nothing."""

    __slots__ = ("body", "body_message", "headers", "outcome", "start_message", "status")

    def __init__(
        self, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...], outcome: str
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.outcome = outcome  # the metrics label: what happened, in one word
        self.start_message: dict[str, Any] = {
            "type": "http.response.start",
            "status": status,
            "headers": headers,
        }
        self.body_message: dict[str, Any] = {"type": "http.response.body", "body": body}

    def header_map(self) -> dict[str, str]:
        """The headers for a framework Response (which adds its own content-length)."""
        return {k.decode(): v.decode() for k, v in self.headers if k != b"content-length"}


def json_answer(
    status: int, payload: dict[str, Any], outcome: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> Answer:
    body = _compact_json(payload).encode()
    headers = ((b"content-type", JSON), (b"content-length", str(len(body)).encode()), NO_STORE, *extra)
    return Answer(status, body, headers, outcome)


def error(status: int, code: str, message: str, retry_after: int | None = None) -> Answer:
    extra = ((b"retry-after", str(retry_after).encode()),) if retry_after is not None else ()
    return json_answer(status, {"error": code, "message": message}, code, extra)


def raw_answer(
    status: int, body: bytes, content_type: bytes, outcome: str, *extra: tuple[bytes, bytes]
) -> Answer:
    headers = ((b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra)
    return Answer(status, body, headers, outcome)


async def send_answer(send: Send, answer: Answer) -> None:
    await send(answer.start_message)
    await send(answer.body_message)


# The answers that need nothing from the request: built once, sent as they are.
NOT_FOUND: Final = error(404, "not_found", "no such resource")
SOLD_OUT: Final = error(410, "sold_out", "the sale is sold out")
INSUFFICIENT: Final = error(409, "insufficient_stock", "less stock left than the quantity asked")
UNAVAILABLE: Final = error(503, "unavailable", "the sale cannot take orders right now; try again")
# The reservation is held, its publish failed: a retry publishes it again.
UNPUBLISHED: Final = error(503, "unavailable", "the reservation could not be confirmed yet; try again", 1)
TOO_LARGE: Final = error(413, "payload_too_large", "the body is larger than a buy request can be")
CUT_SHORT: Final = error(422, "invalid_request", "the body ended before its declared end")
INTERNAL: Final = error(500, "internal", "internal error")  # a bug, never an answer to bad input
MISSING_TOKEN: Final = error(401, "unauthorized", "missing bearer token")
INVALID_TOKEN: Final = {
    reason: error(401, "unauthorized", reason)
    for reason in (
        "malformed token",
        "bad signature",
        "expired token",
        "invalid token",
        "not a payment credential",
        "malformed payment credential",
        "expired payment credential",
    )
}


def unauthorized(reason: str) -> Answer:
    return INVALID_TOKEN.get(reason) or INVALID_TOKEN["invalid token"]


def shed(retry_after: int) -> Answer:
    return _SHED.get(retry_after) or error(503, "overloaded", "too many buyers at once; retry", retry_after)


def rate_limited(retry_after: int) -> Answer:
    return _LIMITED.get(retry_after) or error(
        429, "rate_limited", "too many attempts; slow down", retry_after
    )


_SHED: Final = {s: error(503, "overloaded", "too many buyers at once; retry", s) for s in range(1, 11)}
_LIMITED: Final = {s: error(429, "rate_limited", "too many attempts; slow down", s) for s in range(1, 61)}


def reservation(reservation_id: str, quantity: int, expires_at: str | None) -> Answer:
    """The 202: formatted directly (as json_answer would write it), it is in every buyer's answer."""
    expiry = "" if expires_at is None else f',"expiresAt":{_json_string(expires_at)}'
    body = (
        f'{{"reservationId":{_json_string(reservation_id)},"state":"reserved",'
        f'"quantity":{quantity:d}{expiry}}}'
    )
    return raw_answer(202, body.encode(), JSON, "reserved", NO_STORE)


def reservation_again(body: bytes) -> Answer:
    """A reservation answered before, from its body: the same headers as `reservation` gives."""
    return raw_answer(202, body, JSON, "reserved", NO_STORE)
