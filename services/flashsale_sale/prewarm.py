"""The one step that builds a sale's gate: first at the start, and again after Redis lost it.

    prewarm_sale(...)   the sale's row and ledger ensured; then exactly one of
      - the gate exists                        -> nothing ("already built")
      - no order and no message yet            -> the first build: stock = the initial stock
      - otherwise (Redis lost the gate)        -> the rebuild, from the record

The rebuild (docs/settlement.md, "Redis loss") first lets every reservation accepted before the loss
finish its publish (`settle_seconds`, above the gateway's 10 s publish timeout), then waits until the
consumer group has no lag (every accepted reservation is an order in the record), then, holding the
ledger row's lock (no order written, none expired meanwhile), builds stock, initial, buyers and
settled in one script that does nothing if a gate appeared in between. Nothing else ever writes a
lost gate back, and a retired sale is never rebuilt. The operator calls `prewarm_sale` as a function;
`flashsale prewarm` is the same for a human.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import psycopg
import redis

from flashsale_sale import db, gate
from flashsale_sale.contract import SaleKeys, parse_pending
from flashsale_sale.lag import GroupLag
from flashsale_sale.settlement_lua import REBUILD_LUA, rebuild_args, rebuild_keys

log = logging.getLogger(__name__)

SETTLE_SECONDS = 15.0  # > the gateways' publish timeout (FLASHSALE_PUBLISH_TIMEOUT_SECONDS, default 10 s)
DRAIN_TIMEOUT_SECONDS = 300.0


class Built(StrEnum):
    ALREADY = "already built"
    FIRST = "built"
    REBUILT = "rebuilt"


class PrewarmRefused(Exception):
    """The gate must not be built: the sale is retired, the topic did not drain, or the record is wrong."""


@dataclass(frozen=True)
class SaleSpec:
    sale_id: str
    name: str
    stock: int
    per_user_limit: int


@dataclass(frozen=True)
class Rebuild:
    """What the rebuild writes, derived from the record (pure, see `plan_rebuild`)."""

    stock: int
    initial: int
    buyers: list[tuple[str, str]]  # (user, reservation id) of the orders not expired
    settled: list[str]  # expired orders, and pending reservations that never became orders


def plan_rebuild(
    initial: int,
    ledger: int,
    live: list[tuple[str, str, int]],
    expired: list[str],
    pending_not_ordered: list[str],
) -> Rebuild:
    """The gate as the record says it must be; PrewarmRefused if the ledger disagrees with the orders."""
    live_units = sum(units for _, _, units in live)
    stock = initial - live_units
    if stock != ledger or stock < 0:
        raise PrewarmRefused(
            f"the ledger says {ledger} remaining, the orders say {stock}: run `flashsale reconcile`"
        )
    buyers = [(user, reservation) for reservation, user, _ in live]
    return Rebuild(stock, initial, buyers, [*expired, *pending_not_ordered])


def prewarm_sale(
    client: redis.Redis,
    conn: psycopg.Connection[Any],
    lag: GroupLag,
    spec: SaleSpec,
    *,
    settle_seconds: float = SETTLE_SECONDS,
    drain_timeout: float = DRAIN_TIMEOUT_SECONDS,
    open_after: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> Built:
    """Builds the sale's gate if it must be built; PrewarmRefused when it must not (see the module).

    `open_after`: set the start flag once this call built the gate - a Redis that lost the gate lost
    the flag with it, and only the caller (the operator) knows whether the sale was live or paused.
    """
    built = _build(
        client, conn, lag, spec, settle_seconds=settle_seconds, drain_timeout=drain_timeout, sleep=sleep
    )
    if built is not Built.ALREADY and open_after:
        gate.set_open(client, SaleKeys(spec.sale_id), True)
    return built


def _build(
    client: redis.Redis,
    conn: psycopg.Connection[Any],
    lag: GroupLag,
    spec: SaleSpec,
    *,
    settle_seconds: float,
    drain_timeout: float,
    sleep: Callable[[float], None],
) -> Built:
    keys = SaleKeys(spec.sale_id)
    _ensure_sale(conn, spec)
    if gate.remaining(client, keys) is not None:
        return Built.ALREADY
    orders = conn.execute(db.ORDERS_BY_STATE, {"sale": spec.sale_id}).fetchall()
    conn.commit()
    if not orders and lag.read().messages_ever == 0:
        # Nothing was ever sold: the spec's stock (which may have changed since the record was made)
        # is the sale's until the gate holds it.
        with conn.transaction():
            conn.execute(db.ADOPT_STOCK, {"sale": spec.sale_id, "stock": spec.stock})
        return Built.FIRST if gate.prewarm(client, keys, spec.stock) else Built.ALREADY
    log.warning("sale %s: the gate is missing; rebuilding it from the record", spec.sale_id)
    sleep(settle_seconds)  # reservations accepted before the loss finish their publish (or fail)
    _wait_for_drain(lag, drain_timeout, sleep)
    return _rebuild(client, conn, keys)


def retire_sale(client: redis.Redis, conn: psycopg.Connection[Any], sale_id: str) -> bool:
    """Teardown's last step: the sale is marked retired (never rebuilt again), then its keys go."""
    with conn.transaction():
        row = conn.execute(db.RETIRE_SALE, {"sale": sale_id}).fetchone()
    gate.drop(client, SaleKeys(sale_id))
    return row is not None


def _ensure_sale(conn: psycopg.Connection[Any], spec: SaleSpec) -> int:
    """The sale's row and ledger (created once); its initial stock; PrewarmRefused if retired."""
    with conn.transaction():
        params = {"sale": spec.sale_id, "name": spec.name, "stock": spec.stock, "limit": spec.per_user_limit}
        conn.execute(db.ENSURE_SALE, params)
        row = conn.execute(db.SALE_RECORD, {"sale": spec.sale_id}).fetchone()
    assert row is not None
    initial, _, retired, _ = row
    if retired:
        raise PrewarmRefused(f"sale {spec.sale_id} is retired: its gate is never built again")
    if int(initial) != spec.stock:  # the first build adopts the spec's stock; a rebuild keeps the record's
        log.info(
            "sale %s: the record's initial stock is %s, the spec's %d", spec.sale_id, initial, spec.stock
        )
    return int(initial)


def _wait_for_drain(lag: GroupLag, timeout: float, sleep: Callable[[float], None]) -> None:
    deadline = time.monotonic() + timeout
    while True:
        total = lag.read().total
        if total == 0:
            return
        if time.monotonic() >= deadline:
            raise PrewarmRefused(f"the topic did not drain within {timeout:.0f} s ({total} messages behind)")
        log.info("waiting for the consumers: %d messages behind", total)
        sleep(1.0)


def _rebuild(client: redis.Redis, conn: psycopg.Connection[Any], keys: SaleKeys) -> Built:
    sale = {"sale": keys.sale_id}
    with conn.transaction():
        locked = conn.execute(db.LOCK_LEDGER, sale).fetchone()
        record = conn.execute(db.SALE_RECORD, sale).fetchone()
        if locked is None or record is None:
            raise PrewarmRefused(f"sale {keys.sale_id} has no ledger")
        if record[2]:
            raise PrewarmRefused(f"sale {keys.sale_id} is retired: its gate is never built again")
        live = [(str(r), str(u), int(q)) for r, u, q in conn.execute(db.LIVE_ORDERS, sale).fetchall()]
        expired = [str(r) for (r,) in conn.execute(db.EXPIRED_ORDER_IDS, sale).fetchall()]
        pending = {_text(rid): parse_pending(v) for rid, v in client.hgetall(keys.pending).items()}
        ordered = conn.execute(db.ORDERS_BY_IDS, {**sale, "reservations": list(pending)}).fetchall()
        not_ordered = sorted(set(pending) - {str(r) for (r,) in ordered})
        plan = plan_rebuild(int(record[0]), int(locked[0]), live, expired, not_ordered)
        args = rebuild_args(plan.stock, plan.initial, plan.buyers, plan.settled)
        built = bool(client.eval(REBUILD_LUA, 5, *rebuild_keys(keys), *args))
    if not built:
        return Built.ALREADY
    log.warning("sale %s: gate rebuilt with %d units (%d live orders)", keys.sale_id, plan.stock, len(live))
    return Built.REBUILT


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
