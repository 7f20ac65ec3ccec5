"""What a buy request says: the bearer token and the optional `{"quantity": n}` body. Pure functions."""

from __future__ import annotations

import json
from typing import Final

MAX_BODY_BYTES: Final = 4096  # a buy body is a dozen bytes; anything bigger is not a buy request
_BEARER: Final = b"bearer "
_SHAPE: Final = 'the body must be empty or the JSON object {"quantity": n}'


class BadBody(ValueError):
    """The body is not a buy request (422)."""


def bearer_token(authorization: bytes | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None when there is none."""
    if authorization is None or len(authorization) < 8 or authorization[:7].lower() != _BEARER:
        return None
    token = authorization[7:].strip()
    try:
        return token.decode("ascii") if token else None
    except UnicodeDecodeError:
        return None


def token_user(token: str | None) -> str | None:
    """The user a token names, *unverified*: only to look up a cached answer before the HMAC."""
    if token is None:
        return None
    payload = token.rpartition(".")[0]
    user = payload.partition(".")[2].rpartition(".")[0]
    return user or None


def parse_quantity(body: bytes, limit: int) -> int:
    """The quantity asked: 1 for an empty body, n for exactly `{"quantity": n}`; else raises BadBody.

    A buy body holds one object and no array, so a body with any other bracket is refused before
    json.loads sees it: nesting deep enough to exhaust Python's recursion fits in 4 KiB.
    """
    if not body.strip():
        return 1
    if body.count(b"{") != 1 or b"[" in body:
        raise BadBody(_SHAPE)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadBody(_SHAPE) from error
    if not isinstance(data, dict) or len(data) != 1 or "quantity" not in data:
        raise BadBody(_SHAPE)
    quantity = data["quantity"]
    if isinstance(quantity, float) and quantity.is_integer():
        quantity = int(quantity)  # JSON has one number type: 3.0 is the integer 3 (as JSON Schema says)
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise BadBody("quantity must be an integer")
    if not 1 <= quantity <= limit:
        raise BadBody(f"quantity must be between 1 and {limit}")
    return quantity
