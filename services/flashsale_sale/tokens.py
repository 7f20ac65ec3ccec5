"""User tokens and payment credentials: HMAC-signed bearer tokens, each sale with keys of its own.

A user token is `v1.<user>.<expires unix s>.<HMAC-SHA256 over the rest, base64url>`, signed with the
SALE's user-token key: `sale_token_key(platform key, "namespace/name")`, a KDF (HMAC-SHA256 under the
platform key over a domain-separation label and the sale's reference). The shop's login service holds
the platform key and derives any sale's key offline (no uid: before the sale is even applied); a
sale's gateway holds only its own derived key, so a leaked sale key mints tokens for that sale alone.

A payment credential is `p1.<namespace/name>.<expires>.<sig>`, signed with the sale's payment key,
derived the same way from the separate platform payment key under another label: only the shop's
payment service holds it, and a user token is never one (another prefix, another key).

Verifying either costs one HMAC and no I/O, so the gateway can check every request before it touches
Redis. User ids are restricted to a safe alphabet so they can live unquoted in Redis records and
Kafka keys.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from _hashlib import HASH

PREFIX: Final = "v1."
PAYMENT_PREFIX: Final = "p1."
DEFAULT_TTL_SECONDS: Final = 4 * 3600
USER_ID = re.compile(r"[A-Za-z0-9_@:+\-.]{1,128}")
# A FlashSale's `namespace/name`: a DNS label, then the object's name (a DNS subdomain).
SALE_REFERENCE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?")
# The KDF's domain-separation labels: a key derived for one use is never valid for the other.
USER_TOKEN_LABEL: Final = "flashsale user-token v1 "  # noqa: S105 - a label, not a secret
PAYMENT_LABEL: Final = "flashsale payment v1 "


# Where the tools (`flashsale token`, `flashsale load`) read the platform's keys from; `make up` exports them.
USER_TOKEN_KEY_ENV = "FLASHSALE_USER_TOKEN_KEY"  # noqa: S105 - a variable name
PAYMENT_KEY_ENV = "FLASHSALE_PAYMENT_KEY"


class InvalidToken(ValueError):
    """The token is missing, malformed, forged, signed with another key, or expired."""


_BLOCK: Final = 64  # SHA-256's block size
_INNER_PAD: Final = bytes(byte ^ 0x36 for byte in range(256))  # translation tables: key XOR ipad / opad
_OUTER_PAD: Final = bytes(byte ^ 0x5C for byte in range(256))


@functools.lru_cache(maxsize=16)
def _keyed(key: bytes) -> tuple[HASH, HASH]:
    """HMAC-SHA256's inner and outer hash states for `key` (RFC 2104), made once per key.

    A signature then costs two copies of a state and two small hashes - a third of what
    hmac.digest spends, most of it on setting the key up again for every token."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(padded.translate(_INNER_PAD)), hashlib.sha256(padded.translate(_OUTER_PAD))


def _signature(key: bytes, payload: str) -> str:
    inner_state, outer_state = _keyed(key)
    inner = inner_state.copy()
    inner.update(payload.encode())
    outer = outer_state.copy()
    outer.update(inner.digest())
    return base64.urlsafe_b64encode(outer.digest()).rstrip(b"=").decode()


def sale_reference(reference: str) -> str:
    """`namespace/name` checked (ValueError otherwise): what the per-sale keys are derived from."""
    if not SALE_REFERENCE.fullmatch(reference):
        raise ValueError(f"sale {reference!r} must be NAMESPACE/NAME (lower-case DNS names)")
    return reference


def _derive(platform_key: bytes, label: str, sale: str) -> str:
    digest = hmac.digest(platform_key, f"{label}{sale_reference(sale)}".encode(), "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sale_token_key(platform_key: bytes, sale: str) -> str:
    """The user-token key of the sale `namespace/name` (text: what its Secret and gateway hold)."""
    return _derive(platform_key, USER_TOKEN_LABEL, sale)


def sale_payment_key(platform_payment_key: bytes, sale: str) -> str:
    """The payment key of the sale `namespace/name`, derived from the platform's payment key."""
    return _derive(platform_payment_key, PAYMENT_LABEL, sale)


def mint(key: bytes, user: str, ttl_seconds: int = DEFAULT_TTL_SECONDS, now: float | None = None) -> str:
    if not USER_ID.fullmatch(user):
        raise ValueError(f"user id {user!r} must match {USER_ID.pattern}")
    if ttl_seconds < 1:
        raise ValueError("a token lives at least one second")
    expires = int(now if now is not None else time.time()) + ttl_seconds
    payload = f"{PREFIX}{user}.{expires}"
    return f"{payload}.{_signature(key, payload)}"


def mint_many(key: bytes, users: Iterable[str], ttl_seconds: int = DEFAULT_TTL_SECONDS) -> list[str]:
    now = time.time()
    return [mint(key, user, ttl_seconds, now) for user in users]


def verify(key: bytes, token: str, now: float | None = None) -> str:
    """The user id the token vouches for; raises InvalidToken otherwise."""
    # ASCII only: compare_digest raises on other text, and isdigit()/int() read other scripts' digits
    if not token.startswith(PREFIX) or len(token) > 512 or not token.isascii():
        raise InvalidToken("malformed token")
    payload, _, signature = token.rpartition(".")
    user, _, expires = payload[len(PREFIX) :].rpartition(".")
    if not user or not expires.isdigit() or not USER_ID.fullmatch(user):
        raise InvalidToken("malformed token")
    if not hmac.compare_digest(signature, _signature(key, payload)):
        raise InvalidToken("bad signature")
    if int(expires) <= (now if now is not None else time.time()):
        raise InvalidToken("expired token")
    return user


def mint_payment(
    key: bytes, sale: str, ttl_seconds: int = DEFAULT_TTL_SECONDS, now: float | None = None
) -> str:
    """The payment service's credential for the sale `namespace/name`, signed with that sale's payment key."""
    sale_reference(sale)
    if ttl_seconds < 1:
        raise ValueError("a credential lives at least one second")
    expires = int(now if now is not None else time.time()) + ttl_seconds
    payload = f"{PAYMENT_PREFIX}{sale}.{expires}"
    return f"{payload}.{_signature(key, payload)}"


def verify_payment(key: bytes, credential: str, now: float | None = None) -> str:
    """The sale a payment credential names, if signed with `key` (the sale's payment key) and not
    expired; raises InvalidToken otherwise. The key, not the name, is what scopes it to one sale."""
    if not credential.startswith(PAYMENT_PREFIX) or len(credential) > 512 or not credential.isascii():
        raise InvalidToken("not a payment credential")
    payload, _, signature = credential.rpartition(".")
    sale, _, expires = payload[len(PAYMENT_PREFIX) :].rpartition(".")
    if not expires.isdigit() or not SALE_REFERENCE.fullmatch(sale):
        raise InvalidToken("malformed payment credential")
    if not hmac.compare_digest(signature, _signature(key, payload)):
        raise InvalidToken("bad signature")
    if int(expires) <= (now if now is not None else time.time()):
        raise InvalidToken("expired payment credential")
    return sale
