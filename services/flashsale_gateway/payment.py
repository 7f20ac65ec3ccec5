"""`POST /api/orders/{id}/pay`: the shop's payment service pays one of the sale's orders.

Only the payment service's credential (tokens.verify_payment, with the sale's own payment key) may
call it; a shopper's user token gets 403 (`api.py`). The service pays for whichever shopper it took
the money from, so the order's owner is not checked: the credential is scoped to this sale, and the
sale's orders are all it can reach.

Payment is one conditional UPDATE on the order's row (db.PAY_ORDER): it wins only while the order is
'ordered' and its deadline (the database's clock) has not passed; the expiry is the same kind of
UPDATE on the same row, so exactly one of them changes it. Paying again answers 200 again. A
reservation the consumers have not turned into an order yet cannot be paid: 409 `not_ordered_yet`
with Retry-After (it is usually an order within a second). An unknown id is 404.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Final

import psycopg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from flashsale_gateway import answers
from flashsale_gateway.answers import Answer
from flashsale_gateway.orders import QUERY_TIMEOUT_SECONDS, RESERVATION_ID, LookupUnavailable, SmallPool
from flashsale_sale import tokens
from flashsale_sale.contract import SaleKeys
from flashsale_sale.db import PAY_ORDER

NOT_ORDERED_RETRY_SECONDS: Final = 1


class Paid(StrEnum):
    PAID = "paid"
    EXPIRED = "expired"
    NOT_ORDERED_YET = "not_ordered_yet"
    NOT_FOUND = "not_found"


USER_TOKEN_REFUSED: Final = answers.error(
    403, "forbidden", "a user token cannot pay: only the shop's payment service (its credential) can"
)
EXPIRED: Final = answers.error(409, "expired", "the order expired unpaid; its stock went back on sale")
NOT_ORDERED_YET: Final = answers.error(
    409, "not_ordered_yet", "the reservation is not an order yet; retry shortly", NOT_ORDERED_RETRY_SECONDS
)


def authorize(payment_key: bytes, user_token_key: bytes, credential: str | None) -> Answer | None:
    """None when `credential` is this sale's payment credential; else 401, or 403 for a user token."""
    if credential is None:
        return answers.MISSING_TOKEN
    try:
        tokens.verify_payment(payment_key, credential)
        return None
    except tokens.InvalidToken as invalid:
        refused = answers.unauthorized(str(invalid))
    if credential.isascii():
        try:
            tokens.verify(user_token_key, credential)
            return USER_TOKEN_REFUSED  # a valid shopper, who may not mark orders paid
        except tokens.InvalidToken:
            pass
    return refused


def answer(outcome: Paid, reservation_id: str) -> Answer:
    if outcome is Paid.PAID:
        return answers.json_answer(200, {"reservationId": reservation_id, "state": "paid"}, "paid")
    if outcome is Paid.EXPIRED:
        return EXPIRED
    if outcome is Paid.NOT_ORDERED_YET:
        return NOT_ORDERED_YET
    return answers.NOT_FOUND


async def pay(pool: SmallPool, *, client: aioredis.Redis, keys: SaleKeys, reservation_id: str) -> Paid:
    """Pays the sale's order if it may still be paid; LookupUnavailable when the stores cannot answer."""
    if not RESERVATION_ID.fullmatch(reservation_id):
        return Paid.NOT_FOUND
    params = {"reservation": reservation_id, "sale": keys.sale_id}
    for _ in range(3):
        try:
            row = await asyncio.wait_for(pool.fetch_one(PAY_ORDER, params), QUERY_TIMEOUT_SECONDS)
        except (psycopg.Error, OSError, TimeoutError) as error:
            raise LookupUnavailable(str(error) or "the order database did not answer") from error
        if row is None:
            return await _not_an_order(client, keys, reservation_id)
        paid_now, state, past_deadline = row
        if paid_now or state == "paid":
            return Paid.PAID
        if state == "expired" or past_deadline:
            return Paid.EXPIRED
        # 'ordered' before the deadline, yet not paid by us: another payment or the expiry changed the
        # row while we read it. Ask again: the row says which one won.
    raise LookupUnavailable("the order kept changing")


async def _not_an_order(client: aioredis.Redis, keys: SaleKeys, reservation_id: str) -> Paid:
    try:
        pending = await client.hexists(keys.pending, reservation_id)
    except (RedisError, OSError) as error:
        raise LookupUnavailable(str(error)) from error
    if pending:
        return Paid.NOT_ORDERED_YET
    return Paid.NOT_FOUND
