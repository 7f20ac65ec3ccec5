"""What a buy request says: the bearer token and the optional `{"quantity": n}` body. Pure functions."""

from __future__ import annotations

import json
from typing import Final

MAX_BODY_BYTES: Final = 4096  # a buy body is a dozen bytes; anything bigger is not a buy request
_BEARER: Final = b"bearer "


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
    """The quantity asked (1 when the body is empty); raises BadBody for anything else."""
    if not body.strip():
        return 1
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadBody('the body must be JSON: {"quantity": n}') from error
    if not isinstance(data, dict):
        raise BadBody('the body must be a JSON object: {"quantity": n}')
    quantity = data.get("quantity", 1)
    if isinstance(quantity, float) and quantity.is_integer():
        quantity = int(quantity)  # JSON has one number type: 3.0 is the integer 3 (as JSON Schema says)
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise BadBody("quantity must be an integer")
    if not 1 <= quantity <= limit:
        raise BadBody(f"quantity must be between 1 and {limit}")
    return quantity
