"""The end of every chaos scenario: is the sale whole?

`assert_sale_is_whole` waits until the sale has settled (the consumer group has no lag, no
reservation is still on its way to the record, every expired order's units are back), then asks
`flashsale reconcile --json` until it passes, and checks on its own, from Redis, PostgreSQL
and the crowd's answers:

- 0 oversell: units in orders not expired <= the stock; the ledger >= 0 and = stock - those units;
  the gate's stock + units pending + units in orders not expired + expired units not yet returned
  == the stock (every unit counted once);
- 0 duplicate order: one order per reservation, one live order per user, none above the limit;
- 0 lost accepted order: every reservation answered 202 is an order (paid, unpaid, or unpaid and
  expired), whatever was killed: a 202 means the broker had its record, so it is never given back;
- no order nobody was answered 202 for (a reservation given back must never become an order too);
  the reservations nobody was answered 202 for may be given back (the recovery's), never both.

The checks are written against the design (docs/settlement.md), not against the code they test.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from flashsale_dev.sale import LocalSale
from flashsale_dev.settlement import reconcile
from flashsale_dev.waiting import wait_for

_QUIET = logging.getLogger("chaos.kafka")  # librdkafka's complaints while a broker is away
_QUIET.setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Order:
    user: str
    quantity: int
    state: str  # ordered, paid, expired


@dataclass(frozen=True)
class Record:
    """What the two stores say about one sale, read one after the other."""

    stock: int
    orders: dict[str, Order]  # by reservation id
    ledger: int | None
    gate: int | None  # the Redis stock; None: no gate
    pending: dict[str, tuple[str, int]]  # reservation id -> (user, units), not yet orders
    settled: frozenset[str]  # reservation ids whose units went back to the gate

    def in_state(self, *states: str) -> dict[str, Order]:
        return {rid: order for rid, order in self.orders.items() if order.state in states}

    @property
    def live_units(self) -> int:
        return sum(order.quantity for order in self.in_state("ordered", "paid").values())

    @property
    def unreturned_units(self) -> int:
        return sum(o.quantity for rid, o in self.in_state("expired").items() if rid not in self.settled)

    @property
    def pending_units(self) -> int:
        return sum(units for rid, (_, units) in self.pending.items() if rid not in self.orders)

    def describe(self) -> str:
        states = Counter(order.state for order in self.orders.values())
        return (
            f"stock {self.stock}: gate {self.gate}, pending {self.pending_units} units"
            f" ({len(self.pending)} entries), orders {dict(states)} ({self.live_units} live units,"
            f" {self.unreturned_units} expired units not returned), ledger {self.ledger},"
            f" settled {len(self.settled)}"
        )


def read_record(sale: LocalSale) -> Record:
    with sale.database() as conn:
        rows = conn.execute(
            "SELECT reservation_id, user_id, quantity, state FROM orders WHERE sale_id = %s",
            (sale.sale_id,),
        ).fetchall()
    orders = {str(rid): Order(str(user), int(qty), str(state)) for rid, user, qty, state in rows}
    ledger = sale.ledger_remaining()
    with sale.redis() as client:
        stock = client.get(sale.keys.stock)
        raw_pending = client.hgetall(sale.keys.pending)
        settled = client.smembers(sale.keys.settled)
    pending = {}
    for rid, record in raw_pending.items():
        user, units = record.decode().split(" ")[:2]  # "user units reserved_ms[ claimed]"
        pending[rid.decode()] = (user, int(units))
    return Record(
        stock=sale.stock,
        orders=orders,
        ledger=ledger,
        gate=None if stock is None else int(stock),
        pending=pending,
        settled=frozenset(member.decode() for member in settled),
    )


def group_lag(sale: LocalSale) -> int:
    """Messages of the sale's topic its consumer group has not committed yet (asked of the broker)."""
    return sum(max(end - start, 0) for start, end in _group_offsets(sale).values())


def committed_messages(sale: LocalSale) -> int:
    """Messages the sale's consumer group has committed, over all partitions (from the log's start)."""
    return sum(start for start, _ in _group_offsets(sale).values())


def topic_messages(sale: LocalSale) -> int:
    """Messages ever published to the sale's topic (the sum of the partitions' log ends)."""
    return sum(end for _, end in _group_offsets(sale).values())


def _group_offsets(sale: LocalSale) -> dict[int, tuple[int, int]]:
    """Per partition: (where the group resumes, the log's end).

    Asked through a Consumer of the group that never subscribes (so never joins it), not through
    AdminClient.list_consumer_group_offsets: librdkafka 2.16 dereferences a NULL consumer group in an
    admin client when the answer is NOT_COORDINATOR and crashes the process (librdkafka issue 5040).
    """
    settings = {"bootstrap.servers": sale.kafka_bootstrap_servers, "group.id": sale.group}
    reader = Consumer({**settings, "enable.auto.commit": False, "logger": _QUIET})
    try:
        topic = reader.list_topics(sale.topic, timeout=10).topics[sale.topic]
        partitions = [TopicPartition(sale.topic, p) for p in sorted(topic.partitions)]
        offsets = {}
        for committed in reader.committed(partitions, timeout=10):
            low, high = reader.get_watermark_offsets(
                TopicPartition(sale.topic, committed.partition), timeout=10
            )
            offsets[committed.partition] = (committed.offset if committed.offset >= 0 else low, high)
        return offsets
    finally:
        reader.close()


def assert_sale_is_whole(sale: LocalSale, accepted: Mapping[str, str], *, timeout: float = 180.0) -> Record:
    """The sale settles within `timeout` and is whole (see the module); returns what the stores say.

    `accepted` maps every reservation id answered 202 to its user: every one must be an order.
    """

    def settled() -> Record | bool:
        if sale.crashed():
            return True  # no use waiting: say which process died (below)
        if group_lag(sale) != 0:
            return False
        record = read_record(sale)
        in_flight = [rid for rid in record.pending if rid not in record.orders]
        unreturned = [rid for rid in record.in_state("expired") if rid not in record.settled]
        missing = [rid for rid in accepted if rid not in record.orders and rid not in record.settled]
        return False if in_flight or unreturned or missing else record  # a given-back 202 fails below

    wait_for(
        settled,
        timeout=timeout,
        interval=0.5,
        what="the sale to settle: group lag 0, nothing pending, expired units returned, every 202 accounted",
        describe=lambda: _describe(sale, accepted),
    )
    dead = {p.name: p.returncode for p in sale.processes if p.name in sale.crashed()}
    assert not dead, f"sale processes died (exit codes): {dead} (logs in {sale.logs})"
    wait_for(
        lambda: reconcile(sale)[0] == 0,
        timeout=60,
        interval=0.5,
        what="`flashsale reconcile --json` to pass",
        describe=lambda: _said_by_reconcile(sale),
    )
    record = read_record(sale)
    _check(sale, record, accepted)
    return record


def _check(sale: LocalSale, record: Record, accepted: Mapping[str, str]) -> None:
    seen = record.describe()
    # 0 oversell
    assert record.live_units <= record.stock, f"OVERSOLD: {seen}"
    assert record.ledger is not None, f"no ledger: {seen}"
    assert record.ledger >= 0, f"negative ledger: {seen}"
    assert record.ledger == record.stock - record.live_units, f"the ledger disagrees with the orders: {seen}"
    assert record.gate is not None, f"no gate at the end: {seen}"
    assert record.gate >= 0, f"negative gate: {seen}"
    counted = record.gate + record.pending_units + record.live_units + record.unreturned_units
    assert counted == record.stock, f"{counted} units counted for a stock of {record.stock}: {seen}"
    # 0 duplicate order (the primary key makes one order per reservation; the rest is ours to prove)
    live_by_user = Counter(order.user for order in record.in_state("ordered", "paid").values())
    doubled = {user: n for user, n in live_by_user.items() if n > 1}
    assert not doubled, f"users with two live orders: {list(doubled.items())[:5]}"
    above = [rid for rid, order in record.orders.items() if order.quantity > sale.per_user_limit]
    assert not above, f"orders above the per-user limit: {above[:5]}"
    given_back_and_live = [rid for rid in record.in_state("ordered", "paid") if rid in record.settled]
    assert not given_back_and_live, f"given back to the gate and still live orders: {given_back_and_live[:5]}"
    # 0 lost accepted order: a 202 is an order, never "given back"
    returned = [rid for rid in accepted if rid not in record.orders and rid in record.settled]
    assert not returned, f"{len(returned)} reservations answered 202 were given back: {returned[:5]}"
    lost = [rid for rid in accepted if rid not in record.orders]
    assert not lost, f"{len(lost)} reservations answered 202 are not orders: {lost[:5]}"
    wrong_owner = [
        rid for rid, user in accepted.items() if rid in record.orders and record.orders[rid].user != user
    ]
    assert not wrong_owner, f"orders of another user than the one answered: {wrong_owner[:5]}"
    # and no order that no shopper was answered 202 for
    unanswered = [rid for rid in record.orders if rid not in accepted]
    assert not unanswered, f"{len(unanswered)} orders nobody was answered 202 for: {unanswered[:5]}"


def _said_by_reconcile(sale: LocalSale) -> str:
    try:
        return json.dumps(reconcile(sale)[1], indent=1)
    except Exception as error:  # describing must never hide the timeout itself
        return f"(reconcile did not answer: {error!r})"


def _describe(sale: LocalSale, accepted: Mapping[str, str]) -> str:
    try:
        record = read_record(sale)
        missing = [rid for rid in accepted if rid not in record.orders and rid not in record.settled]
        lag = group_lag(sale)
        return f"{record.describe()}; lag {lag}; {len(missing)} accepted not accounted for: {missing[:3]}"
    except Exception as error:  # describing must never hide the timeout itself
        return f"(could not read the sale: {error!r})"
