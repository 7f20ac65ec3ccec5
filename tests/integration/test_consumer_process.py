"""`flashsale consumer` as a real process: Kafka reservations become PostgreSQL orders, exactly once.

Real Redis, Kafka and PostgreSQL; the consumer started by its console script with FLASHSALE_*
environment, as a Deployment starts it. Every wait is on a condition with a generous deadline.
"""

from __future__ import annotations

from flashsale_dev.platform import LocalPlatform
from flashsale_dev.sale import RESERVED_AT_MS, LocalSale
from flashsale_dev.waiting import wait_for
from flashsale_sale.contract import RESERVE_LUA, ReservationMessage, buyer_arg, parse_reserve_reply
from flashsale_sale.settings import MAX_PER_USER_LIMIT
from flashsale_sale.settlement_lua import CLAIM_LUA, claim_keys


def _reserve_through_the_gate(sale: LocalSale, users: int, quantity: int) -> list[ReservationMessage]:
    """What the gateway does before it publishes: the real reserve script, pending records included."""
    args = [buyer_arg(f"user-{i}", quantity, f"r-{i}") for i in range(users)]
    with sale.redis() as client:
        reply = client.eval(RESERVE_LUA, 5, *sale.keys.reserve_keys(), *args)
    results, _ = parse_reserve_reply(reply)
    return [
        ReservationMessage(sale.sale_id, r.reservation_id, f"user-{i}", r.quantity, RESERVED_AT_MS)
        for i, r in enumerate(results)
        if r.reservation_id
    ]


def test_reservations_become_orders_and_leave_the_pending_hash(sale: LocalSale) -> None:
    sale.per_user_limit = 2
    sale.prepare()
    sale.set_open(True)
    reservations = _reserve_through_the_gate(sale, users=40, quantity=2)
    assert len(reservations) == 40
    sent = sale.produce(reservations)
    consumer = sale.start_consumer()

    wait_for(lambda: sale.order_count() == 40, timeout=120, what="40 orders", describe=consumer.output)
    assert sale.orders() == sorted((r.reservation_id, r.user_id, 2) for r in reservations)
    assert sale.ledger_remaining() == sale.stock - 80
    wait_for(lambda: sale.pending() == 0, timeout=60, what="pending emptied")
    assert sale.buyers() == 40  # the buyers stay: one reservation per user
    wait_for(lambda: sale.committed() == sent, timeout=60, what="offsets committed")
    assert consumer.metric("flashsale_consumer_orders_total", sale=sale.sale_name) == 40
    assert consumer.metric("flashsale_consumer_order_units_total") == 80
    assert consumer.metric("flashsale_consumer_ledger_remaining") == sale.stock - 80
    assert consumer.healthz() == 200

    def caught_up() -> bool:
        lag = consumer.samples("flashsale_consumer_lag_messages")
        return sorted(labels["partition"] for labels, _ in lag) == ["0", "1", "2"] and all(
            v == 0 for _, v in lag
        )

    wait_for(caught_up, timeout=60, what="a lag of 0 on each of the 3 partitions")

    consumer.terminate()
    assert consumer.exit_code() == 0, consumer.output()


def test_redelivery_after_the_db_commit_writes_nothing_twice(sale: LocalSale) -> None:
    sale.migrate()
    reservations = [sale.reservation(i) for i in range(30)]
    sent = sale.produce(reservations + reservations)  # the same reservation twice, too
    first = sale.start_consumer()
    wait_for(
        lambda: sale.committed() == sent, timeout=120, what="all offsets committed", describe=first.output
    )
    assert sale.order_count() == 30

    # Killed, then its offsets lost: exactly a crash after the DB commit and before the offset commit.
    first.kill()
    wait_for(sale.rewind_group, timeout=120, what="the group's offsets rewound (the dead member expires)")
    assert sale.committed() == 0

    second = sale.start_consumer()
    wait_for(lambda: sale.committed() == sent, timeout=120, what="re-consumed", describe=second.output)
    assert second.metric("flashsale_consumer_redelivered_total") == 30  # the batch dedupes the repeats
    assert second.metric("flashsale_consumer_orders_total") == 0
    assert sale.order_count() == 30
    assert sale.ledger_remaining() == sale.stock - 30


def test_a_reservation_published_twice_becomes_one_order(sale: LocalSale) -> None:
    """A repeat click publishes a pending reservation again while the first publish may still land:
    the same record twice, in one batch or far apart, claimed already or not, is one order."""
    sale.prepare()
    sale.set_open(True)
    reservations = _reserve_through_the_gate(sale, users=20, quantity=1)
    claimed_by_a_dead_consumer = [r.reservation_id for r in reservations[:5]]
    with sale.redis() as client:
        assert client.eval(CLAIM_LUA, 2, *claim_keys(sale.keys), *claimed_by_a_dead_consumer) == [0] * 5
    sent = sale.produce(reservations + reservations[:10])  # a second publish of ten, in one go
    consumer = sale.start_consumer()
    wait_for(
        lambda: sale.committed() == sent, timeout=120, what="offsets committed", describe=consumer.output
    )
    sent += sale.produce(reservations)  # and again, each once more, after their orders were written
    wait_for(
        lambda: sale.committed() == sent, timeout=120, what="the repeats consumed", describe=consumer.output
    )

    assert sale.orders() == sorted((r.reservation_id, r.user_id, 1) for r in reservations)
    assert sale.ledger_remaining() == sale.stock - 20
    assert consumer.metric("flashsale_consumer_orders_total") == 20
    assert consumer.metric("flashsale_consumer_given_back_skipped_total") == 0
    wait_for(lambda: sale.pending() == 0, timeout=60, what="pending emptied")
    assert sale.gate_remaining() == sale.stock - 20


def test_a_consumer_killed_mid_stream_is_replaced_without_double_orders(sale: LocalSale) -> None:
    sale.stock = 5_000
    sale.migrate()
    sent = sale.produce(sale.reservation(i) for i in range(3_000))
    first = sale.start_consumer(FLASHSALE_BATCH_SIZE="50")
    wait_for(lambda: sale.order_count() > 0, timeout=120, what="the first orders", describe=first.output)
    first.kill()  # wherever it is: between a DB commit and its offset commit, maybe

    second = sale.start_consumer()
    wait_for(
        lambda: sale.committed() == sent, timeout=180, what="everything consumed", describe=second.output
    )
    assert sale.order_count() == 3_000
    assert sale.ledger_remaining() == 5_000 - 3_000


def test_two_consumers_in_one_group_split_the_partitions_and_write_each_order_once(sale: LocalSale) -> None:
    sale.stock = 10_000
    sale.migrate()
    one, two = sale.start_consumer(), sale.start_consumer()

    def split() -> bool:
        counts: list[float] = [
            one.metric("flashsale_consumer_assigned_partitions"),
            two.metric("flashsale_consumer_assigned_partitions"),
        ]
        return sum(counts) == 3 and min(counts) >= 1

    wait_for(split, timeout=120, what="three partitions split over two consumers", describe=two.output)
    sent = sale.produce(sale.reservation(i) for i in range(3_000))
    wait_for(lambda: sale.committed() == sent, timeout=180, what="everything consumed")
    written = [one.metric("flashsale_consumer_orders_total"), two.metric("flashsale_consumer_orders_total")]
    assert min(written) > 0
    assert sum(written) == 3_000
    assert sale.order_count() == 3_000
    assert sale.ledger_remaining() == 10_000 - 3_000


def test_a_poison_message_is_skipped_counted_and_committed(sale: LocalSale) -> None:
    sale.migrate()
    poison: list[ReservationMessage | bytes] = [b"\xff not json", b'{"v": 1}', b"[]"]
    other_sale = ReservationMessage("another-sale", "r-x", "user-x", 1, RESERVED_AT_MS)
    # Above the hard bound of any sale's limit (a sale's own limit may change while it runs: the
    # gateway enforces the one in force, test_operator_changes.py rolls one out under a crowd).
    too_many = sale.reservation(2, quantity=MAX_PER_USER_LIMIT + 1)
    sent = sale.produce([*poison, other_sale.encode(), sale.reservation(1), too_many])
    consumer = sale.start_consumer()

    wait_for(
        lambda: sale.committed() == sent,
        timeout=120,
        what="offsets past the poison",
        describe=consumer.output,
    )
    assert consumer.metric("flashsale_consumer_poison_messages_total") == 5
    assert [reservation for reservation, _, _ in sale.orders(any_sale=True)] == ["r-1"]
    assert consumer.alive  # still running


def test_the_ledger_never_goes_below_zero_the_consumer_stops_the_line(sale: LocalSale) -> None:
    sale.stock = 5
    sale.migrate()
    sent = sale.produce(sale.reservation(i) for i in range(8))  # a gate that let 3 too many through
    consumer = sale.start_consumer()

    assert consumer.exit_code() == 4, consumer.output()
    assert "OVERSELL ALARM" in consumer.output()
    remaining = sale.ledger_remaining()
    assert remaining is not None
    assert remaining >= 0
    assert sum(quantity for _, _, quantity in sale.orders()) == 5 - remaining
    assert sale.committed() < sent  # the failing batch was not committed


def test_without_a_schema_the_consumer_refuses_to_start(sale: LocalSale) -> None:
    consumer = sale.start_consumer()
    assert consumer.exit_code() == 3
    assert "run `flashsale migrate`" in consumer.output()


def test_with_redis_away_nothing_is_written_nor_committed_and_the_consumer_waits(
    sale: LocalSale, platform: LocalPlatform
) -> None:
    """Each batch is claimed in the gate before it is written (docs/settlement.md): no answer from
    Redis, no write and no commit - the batch is retried, the orders wait safely in Kafka."""
    sale.migrate()
    sale.produce(sale.reservation(i) for i in range(20))
    nobody = platform.reserve_port()  # reserved, never bound: connections are refused
    consumer = sale.start_consumer(FLASHSALE_REDIS_URL=f"redis://127.0.0.1:{nobody}/0")

    wait_for(
        lambda: consumer.metric("flashsale_consumer_redis_errors_total") >= 3,
        timeout=120,
        what="claims retried",
        describe=consumer.output,
    )
    assert sale.order_count() == 0
    assert sale.committed() == 0
    assert consumer.healthz() == 200  # waiting, not stuck
    consumer.terminate()
    assert consumer.exit_code() == 0, consumer.output()
    assert sale.committed() == 0


def test_a_lost_database_connection_is_retried_without_losing_or_doubling_orders(sale: LocalSale) -> None:
    sale.migrate()
    first_half = sale.produce(sale.reservation(i) for i in range(20))
    consumer = sale.start_consumer()
    wait_for(
        lambda: sale.committed() == first_half, timeout=120, what="the first half", describe=consumer.output
    )

    with sale.database(autocommit=True) as admin:  # the database drops the consumer's session
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            (f"flashsale-consumer-{sale.sale_id}",),
        ).fetchone()
    assert killed == (1,)
    sent = first_half + sale.produce(sale.reservation(i) for i in range(20, 40))

    wait_for(lambda: sale.committed() == sent, timeout=120, what="the second half", describe=consumer.output)
    assert consumer.metric("flashsale_consumer_db_errors_total") >= 1
    assert sale.order_count() == 40
    assert sale.ledger_remaining() == sale.stock - 40
