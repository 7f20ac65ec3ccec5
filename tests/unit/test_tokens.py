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


# ---- per-sale keys: what a sale's Secret holds mints for that sale alone ----

PLATFORM_KEY = b"the platform's user-token key, never in a sale's namespace"
PLATFORM_PAYMENT_KEY = b"the platform's payment key, the shop's payment service only"


def test_a_sale_key_is_an_hmac_of_the_sale_reference_under_the_platform_key_with_a_label() -> None:
    expected = hmac.new(PLATFORM_KEY, b"flashsale user-token v1 shop/kettle", hashlib.sha256).digest()
    assert tokens.sale_token_key(PLATFORM_KEY, "shop/kettle") == (
        base64.urlsafe_b64encode(expected).rstrip(b"=").decode()
    )


def test_a_token_minted_for_one_sale_is_refused_by_every_other_sale() -> None:
    kettle = tokens.sale_token_key(PLATFORM_KEY, "shop/kettle").encode()
    token = tokens.mint(kettle, "alice", now=NOW)
    assert tokens.verify(kettle, token, now=NOW) == "alice"
    for other in ("shop/teapot", "other-shop/kettle", "shop/kettle2"):
        with pytest.raises(tokens.InvalidToken, match="bad signature"):
            tokens.verify(tokens.sale_token_key(PLATFORM_KEY, other).encode(), token, now=NOW)
    with pytest.raises(tokens.InvalidToken, match="bad signature"):
        tokens.verify(PLATFORM_KEY, token, now=NOW)  # nor is the platform key itself a sale's key


def test_the_user_and_payment_derivations_never_give_the_same_key() -> None:
    """Distinct labels: even one platform key for both would not make a user key a payment key."""
    assert tokens.sale_token_key(PLATFORM_KEY, "shop/kettle") != tokens.sale_payment_key(
        PLATFORM_KEY, "shop/kettle"
    )


@pytest.mark.parametrize("sale", ["", "kettle", "shop/", "/kettle", "Shop/kettle", "shop/ket tle", "a/b/c"])
def test_a_sale_is_named_namespace_slash_name(sale: str) -> None:
    with pytest.raises(ValueError, match="NAMESPACE/NAME"):
        tokens.sale_token_key(PLATFORM_KEY, sale)


# ---- payment credentials: the shop's payment service, one sale ----


def payment_key(sale: str = "shop/kettle") -> bytes:
    return tokens.sale_payment_key(PLATFORM_PAYMENT_KEY, sale).encode()


def test_a_payment_credential_verifies_with_its_sale_s_payment_key_only() -> None:
    credential = tokens.mint_payment(payment_key(), "shop/kettle", ttl_seconds=60, now=NOW)
    assert credential.startswith("p1.shop/kettle.")
    assert tokens.verify_payment(payment_key(), credential, now=NOW + 59) == "shop/kettle"
    with pytest.raises(tokens.InvalidToken, match="bad signature"):
        tokens.verify_payment(payment_key("shop/teapot"), credential, now=NOW)
    with pytest.raises(tokens.InvalidToken, match="expired"):
        tokens.verify_payment(payment_key(), credential, now=NOW + 60)


def test_a_credential_renamed_to_another_sale_is_a_forgery() -> None:
    credential = tokens.mint_payment(payment_key("shop/teapot"), "shop/teapot", now=NOW)
    renamed = credential.replace("shop/teapot", "shop/kettle")
    for key in (payment_key(), payment_key("shop/teapot")):
        with pytest.raises(tokens.InvalidToken, match="bad signature"):
            tokens.verify_payment(key, renamed, now=NOW)


def test_user_tokens_and_payment_credentials_are_never_each_other() -> None:
    user_token = tokens.mint(payment_key(), "alice", now=NOW)  # even under the very same key
    with pytest.raises(tokens.InvalidToken, match="not a payment credential"):
        tokens.verify_payment(payment_key(), user_token, now=NOW)
    credential = tokens.mint_payment(payment_key(), "shop/kettle", now=NOW)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(payment_key(), credential, now=NOW)


@pytest.mark.parametrize(
    "credential",
    ["", "p1.", "p1.shop/kettle", "p1.shop/kettle.soon.sig", "p1.nosale.1790000060.sig", "p1.é/é.1.s"],
)
def test_malformed_payment_credentials_are_rejected(credential: str) -> None:
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_payment(payment_key(), credential, now=NOW)
