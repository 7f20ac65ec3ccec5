"""Lost reservations: pending in the gate long after the decrement, and never an order. Given back once.

A reservation is lost when the gateway died between the decrement and the broker's ack, when its
publish failed and the gateway could not release it, or when the record refused it (a user's second
live order). In that order of questions (docs/settlement.md, "Lost reservations"):

1. candidates: pending longer than FLASHSALE_LOST_RESERVATION_SECONDS (well above the 10 s publish
   timeout: every publish attempted for them has ended, one way or the other);
2. the group has no lag on any partition, asked AFTER choosing them: every message produced before
   that moment is in the record - an order that "merely arrives late" is there already;
3. no order with that id in the record -> RELEASE_LUA (forced: also when a consumer claimed it and
   the record refused it). Those that are orders only missed their "ordered" mark: it is made now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
import redis

from flashsale_sale import db
from flashsale_sale.contract import ORDERED_LUA, RELEASE_LUA, SaleKeys, parse_pending
from flashsale_sale.lag import GroupLag


def lost_candidates(pending: Mapping[bytes | str, bytes | str], now_ms: int, older_than_ms: int) -> list[str]:
    """Pending reservations older than the deadline (pure: the records as HGETALL returns them)."""
    candidates = []
    for reservation, record in pending.items():
        _, _, reserved_ms = parse_pending(record)
        if now_ms - reserved_ms >= older_than_ms:
            candidates.append(reservation.decode() if isinstance(reservation, bytes) else reservation)
    return sorted(candidates)


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
    now_ms: int,
    older_than_ms: int,
) -> Recovered:
    """One pass of the recovery; raises LagUnknown, redis or psycopg errors (the caller retries later)."""
    if lag.read().total > 0:
        return Recovered(lagging=True)  # cheap early answer: a burst is being written
    candidates = lost_candidates(client.hgetall(keys.pending), now_ms, older_than_ms)
    if not candidates:
        return Recovered()
    if lag.read().total > 0:  # the check that counts: after the candidates were chosen
        return Recovered(lagging=True)
    rows = conn.execute(db.ORDERS_BY_IDS, {"sale": keys.sale_id, "reservations": candidates}).fetchall()
    ordered = sorted(str(r) for (r,) in rows)
    if ordered:
        client.eval(ORDERED_LUA, 1, keys.pending, *ordered)
    released = units = 0
    for reservation in sorted(set(candidates) - set(ordered)):
        given = int(client.eval(RELEASE_LUA, 5, *keys.release_keys(), reservation, "1"))
        if given:
            released, units = released + 1, units + given
    return Recovered(released, units, len(ordered))
