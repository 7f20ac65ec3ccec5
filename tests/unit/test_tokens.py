"""User tokens: what the shop's login service mints, the gateway verifies with one HMAC and no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashsale_sale import tokens

KEY = b"k" * 32
NOW = 1_790_000_000.0


def test_a_minted_token_verifies_to_its_user() -> None:
    token = tokens.mint(KEY, "alice@example.com", ttl_seconds=60, now=NOW)
    assert tokens.verify(KEY, token, now=NOW + 59) == "alice@example.com"


def test_the_default_lifetime_is_at_least_an_hour() -> None:
    token = tokens.mint(KEY, "alice", now=NOW)
    assert tokens.verify(KEY, token, now=NOW + 3600) == "alice"


def test_many_tokens_keep_their_order() -> None:
    users = [f"user-{i}" for i in range(50)]
    assert [tokens.verify(KEY, t) for t in tokens.mint_many(KEY, users)] == users


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "v1.",
        "v1.alice",
        "v1.alice.notanumber.sig",
        "v2.alice.1790000060.sig",
        "v1.bad user.1790000060.sig",
        "v1.alice.1790000060." + "x" * 600,
    ],
)
def test_malformed_tokens_are_rejected(token: str) -> None:
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(KEY, token, now=NOW)


def test_a_forged_token_is_rejected() -> None:
    token = tokens.mint(KEY, "alice", ttl_seconds=60, now=NOW)
    payload, _, signature = token.rpartition(".")
    for forged in (
        payload.replace("alice", "mallory") + "." + signature,  # another user under alice's signature
        payload.replace(str(int(NOW) + 60), str(int(NOW) + 99999)) + "." + signature,  # a longer life
        payload + "." + signature[:-1] + ("A" if signature[-1] != "A" else "B"),  # a bit flipped
    ):
        with pytest.raises(tokens.InvalidToken, match="bad signature"):
            tokens.verify(KEY, forged, now=NOW)


def test_a_token_signed_with_another_key_is_rejected() -> None:
    token = tokens.mint(b"another key, 32 bytes long......", "alice", now=NOW)
    with pytest.raises(tokens.InvalidToken, match="bad signature"):
        tokens.verify(KEY, token, now=NOW)


def test_an_expired_token_is_rejected() -> None:
    token = tokens.mint(KEY, "alice", ttl_seconds=60, now=NOW)
    with pytest.raises(tokens.InvalidToken, match="expired"):
        tokens.verify(KEY, token, now=NOW + 60)


@pytest.mark.parametrize("user", ["", "has space", "new\nline", "x" * 129, "semi;colon"])
def test_unsafe_user_ids_are_never_minted(user: str) -> None:
    with pytest.raises(ValueError, match="user id"):
        tokens.mint(KEY, user)


@given(key=st.binary(min_size=1, max_size=200), payload=st.text(max_size=300))
def test_the_signature_is_the_standard_hmac_sha256_whatever_the_key_length(key: bytes, payload: str) -> None:
    """The precomputed inner and outer states (keys above SHA-256's block size hashed first, RFC 2104)."""
    expected = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    assert tokens._signature(key, payload) == base64.urlsafe_b64encode(expected).rstrip(b"=").decode()
