"""The buy decision, cheapest filter first; every step either answers or hands on to a dearer one.

    path + state (front layer) -> sold out, not a known buyer: 410 (no token check, no Redis)
    token (one HMAC) -> body -> this user's cached answer / in-flight attempt -> user rate (429)
    -> sold-out flag (410) -> admission bucket (503) -> Redis gate (one call per tick for all)
    -> Kafka publish, awaited ack -> 202; failed publish -> 503 (the reservation stays pending)

A 202 means published: the broker acknowledged the reservation's record, or a consumer has read it.
A repeat attempt that finds its reservation pending and unclaimed in the gate publishes the same
record again (the consumers write one order per reservation id) and answers 202 only after that
ack. So no gateway ever gives stock back after a failed publish: another attempt's publish of the
same reservation may still be in flight and be acknowledged; a reservation nobody retries is given
back by the lost-reservation recovery (docs/settlement.md).

The cache and the limits are this replica's; the one-reservation-per-user rule that holds across
replicas is the gate's.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from flashsale_gateway import answers
from flashsale_gateway.answers import Answer
from flashsale_gateway.batcher import GateUnavailable, ReserveBatcher
from flashsale_gateway.limits import TokenBucket, UserRateLimit
from flashsale_gateway.metrics import GatewayMetrics
from flashsale_gateway.orders import LookupUnavailable, OrderView
from flashsale_gateway.parsing import BadBody, bearer_token, parse_quantity, token_user
from flashsale_gateway.publisher import Publisher, PublishFailed
from flashsale_gateway.state import StatusBoard, rfc3339
from flashsale_sale import tokens
from flashsale_sale.contract import Outcome, ReserveResult, encode_record

log = logging.getLogger(__name__)

# The answers this replica remembers for repeat clicks: the most recent buyers only, so memory stays
# flat however many buy (a sale of millions would otherwise keep ~1 KB per buyer). A buyer pushed
# out still gets the same reservation back: the gate remembers every buyer, at one coalesced call.
MAX_HELD_ANSWERS = 10_000

OrderLookup = Callable[[str, str], Awaitable[OrderView | None]]  # (reservation id, user) -> the owner's view


def reservation_ids() -> Callable[[], str]:
    """New reservation ids in the shape of a UUID: a random prefix (74 bits) drawn once per process, then
    a counter - unique across replicas and restarts like uuid4, at a tenth of its cost per request.
    (An id is no secret: an order is shown only to its owner's token.)"""
    prefix = str(uuid.uuid4())[:24]  # "xxxxxxxx-xxxx-4xxx-yxxx-"; the last 12 hex digits count
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):012x}"


class Held(NamedTuple):
    """A user's reservation as this replica answered it; forgotten once its payment time is over.

    Only the body is kept (a third of a whole Answer's memory); a repeat click gets it back in a new
    Answer, which costs a microsecond."""

    body: bytes
    until: float


@dataclass(frozen=True)
class BuyRules:
    sale_id: str
    user_token_key: bytes
    per_user_limit: int
    payment_timeout_seconds: int


class BuyPath:
    def __init__(
        self,
        *,
        rules: BuyRules,
        board: StatusBoard,
        batcher: ReserveBatcher,
        publisher: Publisher,
        admission: TokenBucket,
        user_rate: UserRateLimit,
        metrics: GatewayMetrics,
        lookup: OrderLookup,
    ) -> None:
        self._rules = rules
        self._key = rules.user_token_key
        self._limit = rules.per_user_limit
        self._board = board
        self._batcher = batcher
        self._publisher = publisher
        self._admission = admission
        self._user_rate = user_rate
        self._metrics = metrics
        self._lookup = lookup
        self._held: OrderedDict[str, Held] = OrderedDict()
        # Users this replica answered 503 after a failed publish: their reservation stays pending, so
        # their retries pass the sold-out flag and reach the gate (which publishes it again).
        self._unconfirmed: OrderedDict[str, None] = OrderedDict()
        self._new_reservation_id = reservation_ids()
        self._expiry_text = (0.0, "")  # the last expiry formatted: one batch's buyers share it
        # user -> the repeat clicks waiting for that user's attempt in flight (a list, usually empty:
        # a future is made only for a repeat)
        self._inflight: dict[str, list[asyncio.Future[Answer]]] = {}

    def forget(self, user: str) -> None:
        """The user's reservation went back to the gate (released or expired): answer afresh next time."""
        self._held.pop(user, None)
        self._unconfirmed.pop(user, None)

    def sold_out_answer(self, authorization: bytes | None) -> Answer | None:
        """While sold out: 410 at once unless the token names a user this replica holds an answer for.

        The answer is public anyway (the status says so), so it needs no token check; a known buyer's
        repeat (answered here, or whose publish failed here) falls through to the full path and gets
        the reservation back.
        """
        user = token_user(bearer_token(authorization))
        if user is None or (user not in self._held and user not in self._unconfirmed):
            return answers.SOLD_OUT
        return None

    async def attempt(self, authorization: bytes | None, body: bytes) -> Answer:  # noqa: PLR0911 - a return per filter
        token = bearer_token(authorization)
        if token is None:
            return answers.MISSING_TOKEN
        try:
            user = tokens.verify(self._key, token)
        except tokens.InvalidToken as invalid:
            return answers.unauthorized(str(invalid))
        try:
            quantity = parse_quantity(body, self._limit)
        except BadBody as bad:
            return answers.error(422, "invalid_request", str(bad))
        now = time.time()
        held = self._held.get(user)
        if held is not None:
            if now < held.until:
                return answers.reservation_again(held.body)
            del self._held[user]
        repeats = self._inflight.get(user)
        if repeats is not None:  # the same user's attempt is in flight: its answer, when it comes
            repeat: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
            repeats.append(repeat)
            return await repeat
        if not self._user_rate.allow(user, now):
            self._metrics.rate_limited.inc()
            return answers.rate_limited(self._user_rate.retry_after(now))
        if self._board.sold_out and user not in self._unconfirmed:
            return answers.SOLD_OUT
        if not self._admission.take(now):
            self._metrics.shed.inc()
            return answers.shed(self._admission.retry_after())
        self._inflight[user] = repeats = []
        answer = answers.UNAVAILABLE  # what the repeats get if this attempt dies (cancelled)
        try:
            answer = await self._reserve(user, quantity)
        finally:
            del self._inflight[user]
            for repeat in repeats:
                if not repeat.done():  # a repeat's client may have gone
                    repeat.set_result(answer)
        return answer

    async def _reserve(self, user: str, quantity: int) -> Answer:
        """The gate decides; a reservation to publish is answered 202 once Kafka has it."""
        try:
            result = await self._batcher.reserve(user, quantity, self._new_reservation_id())
        except GateUnavailable as down:
            log.warning("reserve call failed: %s", down)
            return answers.UNAVAILABLE
        outcome = result.outcome
        if outcome is Outcome.RESERVED or outcome is Outcome.UNCONFIRMED:
            return await self._publish(user, result)
        return await self._not_reserved(user, result)

    async def _publish(self, user: str, result: ReserveResult) -> Answer:
        """The reservation's record (the same bytes for every attempt at it) to Kafka; 202 after the ack.

        A failed publish gives nothing back: another attempt's publish of the same reservation may
        still be in flight, and be acknowledged. The buyer's retry publishes it again; one nobody
        retries is given back by the recovery once every attempt at it has surely ended."""
        record = encode_record(
            self._rules.sale_id, result.reservation_id, user, result.quantity, result.reserved_ms
        )
        try:
            await self._publisher.publish(record)
        except PublishFailed as failed:
            self._metrics.publish_failures.inc()
            log.warning("publish of %s failed (%s): 503, it stays pending", result.reservation_id, failed)
            self._unconfirmed[user] = None
            if len(self._unconfirmed) > MAX_HELD_ANSWERS:
                self._unconfirmed.popitem(last=False)
            return answers.UNPUBLISHED
        if result.outcome is Outcome.RESERVED:
            self._metrics.reservations.inc()
        else:
            self._metrics.republished.inc()
        return self._accepted(user, result)

    def _accepted(self, user: str, result: ReserveResult) -> Answer:
        """The 202 of a published reservation, remembered until its payment time is over."""
        self._unconfirmed.pop(user, None)
        until = result.reserved_ms / 1000 + self._rules.payment_timeout_seconds
        if self._expiry_text[0] != until:
            self._expiry_text = (until, rfc3339(datetime.fromtimestamp(until, UTC)))
        expires_at = self._expiry_text[1]
        return self._remember(
            user, answers.reservation(result.reservation_id, result.quantity, expires_at), until
        )

    async def _not_reserved(self, user: str, result: ReserveResult) -> Answer:
        outcome = result.outcome
        if outcome is Outcome.CLAIMED:  # a consumer read its message: published, as it is
            return self._accepted(user, result)
        if outcome is Outcome.EXISTING:
            return await self._ordered(user, result)
        if outcome is Outcome.SOLD_OUT:
            self._board.set_sold_out(True)
            return answers.SOLD_OUT
        if outcome is Outcome.INSUFFICIENT:
            return answers.INSUFFICIENT
        if outcome is Outcome.CLOSED:
            self._board.set_flag(False)  # the gate saw the flag off: stop sending buyers at once
            return answers.NOT_FOUND
        return answers.UNAVAILABLE  # NO_GATE: fail closed; only the prewarm rebuilds a gate

    async def _ordered(self, user: str, result: ReserveResult) -> Answer:
        """The user's reservation is no longer pending: it became an order, whose row has the quantity."""
        try:
            order = await self._lookup(result.reservation_id, user)
        except LookupUnavailable:
            return answers.UNAVAILABLE
        if order is None:
            return answers.UNAVAILABLE  # released in between; the next attempt decides afresh
        self._unconfirmed.pop(user, None)
        answer = answers.reservation(order.reservation_id, order.quantity, order.expires_at)
        expires = datetime.fromisoformat(order.expires_at.replace("Z", "+00:00"))
        return self._remember(user, answer, max(time.time(), expires.timestamp()))

    def _remember(self, user: str, answer: Answer, until: float) -> Answer:
        self._held[user] = Held(answer.body, until)
        if len(self._held) > MAX_HELD_ANSWERS:
            self._held.popitem(last=False)
        return answer
