"""Who may call the pay route: the shop's payment service with THIS sale's credential, nobody else."""

from __future__ import annotations

import json

from flashsale_gateway import payment
from flashsale_sale import tokens

PLATFORM_USER_KEY = b"platform user-token key 0123456789"
PLATFORM_PAYMENT_KEY = b"platform payment key 0123456789"
SALE = "shop/kettle"
USER_KEY = tokens.sale_token_key(PLATFORM_USER_KEY, SALE).encode()
PAYMENT_KEY = tokens.sale_payment_key(PLATFORM_PAYMENT_KEY, SALE).encode()


def refusal(credential: str | None) -> tuple[int, str] | None:
    answer = payment.authorize(PAYMENT_KEY, USER_KEY, credential)
    return None if answer is None else (answer.status, json.loads(answer.body)["error"])


def test_the_sale_s_payment_credential_may_pay() -> None:
    assert refusal(tokens.mint_payment(PAYMENT_KEY, SALE)) is None


def test_a_shopper_s_own_valid_token_is_forbidden() -> None:
    assert refusal(tokens.mint(USER_KEY, "alice")) == (403, "forbidden")


def test_another_sale_s_payment_credential_is_unauthorized() -> None:
    teapot = tokens.sale_payment_key(PLATFORM_PAYMENT_KEY, "shop/teapot").encode()
    assert refusal(tokens.mint_payment(teapot, "shop/teapot")) == (401, "unauthorized")


def test_no_credential_or_garbage_is_unauthorized() -> None:
    for credential in (None, "", "garbage", "v1.alice.1.sig", "p1.shop/kettle.9999999999.sig", "ü" * 20):
        assert refusal(credential) == (401, "unauthorized"), credential
