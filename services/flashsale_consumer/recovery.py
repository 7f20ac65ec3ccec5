"""Lost reservations: pending in the gate long after the decrement, and never an order. Given back once.

A reservation is lost when the gateway died between the decrement and the broker's ack, or its
publish failed, and the buyer never asked again (a repeat would have published it again), or when
the record refused it (a user's second live order). In that order of questions (docs/settlement.md,
"Lost reservations"):

1. candidates: pending records whose LAST attempt (the reservation, or the latest repeat click that
   published it again) is older than FLASHSALE_LOST_RESERVATION_SECONDS, by Redis' clock (the one
   that wrote those times). The deadline is validated against the gateways' publish timeout, so every
   publish attempted for them has ended, one way or the other;
2. the group has no lag on any partition, asked AFTER choosing them: every message produced before
   that moment is in the record - an order that "merely arrives late" is there already;
3. no order with that id in the record -> RELEASE_LUA (forced: also when a consumer claimed it and
   the record refused it), on condition that the record is still exactly what step 1 read: a repeat
   click that touched it meanwhile (its publish may be in flight) cancels the release. Those that are
   orders only missed their "ordered" mark: it is made now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
import redis

from flashsale_sale import db
from flashsale_sale.contract import ORDERED_LUA, RELEASE_LUA, SaleKeys, parse_pending_record
from flashsale_sale.lag import GroupLag


def lost_candidates(
    pending: Mapping[bytes | str, bytes | str], now_ms: int, older_than_ms: int
) -> dict[str, bytes | str]:
    """Pending reservations whose last attempt is older than the deadline, by id, with the record as
    it was read (pure: the records as HGETALL returns them)."""
    candidates = {}
    for reservation, record in pending.items():
        if now_ms - parse_pending_record(record).last_attempt_ms >= older_than_ms:
            candidates[reservation.decode() if isinstance(reservation, bytes) else reservation] = record
    return dict(sorted(candidates.items()))


def redis_now_ms(client: redis.Redis) -> int:
    """Redis' clock, the one every reservation time was taken from (the reserve script's TIME)."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


@dataclass(frozen=True)
class Recovered:
    released: int = 0  # reservations given back
    units: int = 0  # their units
    marked: int = 0  # pending reservations that were orders already (their mark was missing)
    lagging: bool = False  # the group had lag: nothing was concluded this time


def recover_lost(
    client: redis.Redis,
    conn: psycopg.Connection[Any],
    lag: GroupLag,
    keys: SaleKeys,
    *,
    older_than_ms: int,
) -> Recovered:
    """One pass of the recovery; raises LagUnknown, redis or psycopg errors (the caller retries later)."""
    if lag.read().total > 0:
        return Recovered(lagging=True)  # cheap early answer: a burst is being written
    candidates = lost_candidates(client.hgetall(keys.pending), redis_now_ms(client), older_than_ms)
    if not candidates:
        return Recovered()
    if lag.read().total > 0:  # the check that counts: after the candidates were chosen
        return Recovered(lagging=True)
    rows = conn.execute(db.ORDERS_BY_IDS, {"sale": keys.sale_id, "reservations": list(candidates)}).fetchall()
    ordered = sorted(str(r) for (r,) in rows)
    if ordered:
        client.eval(ORDERED_LUA, 1, keys.pending, *ordered)
    released = units = 0
    for reservation in sorted(set(candidates) - set(ordered)):
        seen = candidates[reservation]  # released only if nothing touched or claimed it since
        given = int(client.eval(RELEASE_LUA, 5, *keys.release_keys(), reservation, "1", seen))
        if given:
            released, units = released + 1, units + given
    return Recovered(released, units, len(ordered))
