"""The settlement's pure parts: lag arithmetic, lost candidates, the rebuild's plan, events, script args."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from flashsale_cli import main as cli
from flashsale_consumer.recovery import lost_candidates
from flashsale_gateway import payment
from flashsale_gateway.state import StatusBoard
from flashsale_gateway.watch import SaleWatcher
from flashsale_sale.contract import (
    Outcome,
    PendingRecord,
    ReserveResult,
    SaleKeys,
    parse_pending,
    parse_pending_record,
    parse_reserve_reply,
    released_user,
)
from flashsale_sale.lag import TopicLag, partition_lag
from flashsale_sale.prewarm import PrewarmRefused, plan_rebuild
from flashsale_sale.settings import ConsumerSettings, safe_lost_reservation_seconds
from flashsale_sale.settlement_lua import rebuild_args, return_args


@pytest.mark.parametrize(
    ("committed", "low", "high", "lag"),
    [
        (-1, 0, 0, 0),  # nothing committed, nothing produced
        (-1, 0, 7, 7),  # nothing committed, 7 messages: all of them lag
        (-1, 5, 5, 0),  # nothing committed, every message gone by retention
        (-1, 3, 10, 7),  # nothing committed: the consumers would start at the earliest
        (10, 0, 10, 0),  # committed to the end
        (4, 0, 10, 6),
        (2, 5, 10, 5),  # committed below the log's start: retention moved it on
        (12, 0, 10, 0),  # never negative
    ],
)
def test_partition_lag(committed: int, low: int, high: int, lag: int) -> None:
    assert partition_lag(committed, low, high) == lag


def test_topic_lag_total() -> None:
    assert TopicLag({0: 0, 1: 3, 2: 4}, 20).total == 7
    assert TopicLag({}, 0).total == 0


def test_lost_candidates_are_the_pending_records_older_than_the_deadline() -> None:
    pending: dict[bytes | str, bytes | str] = {
        b"old": b"alice 1 1000",
        b"claimed-old": b"bob 2 1000 c",
        "young": "carol 1 60001",
        b"edge": b"dave 1 0",
    }
    candidates = lost_candidates(pending, now_ms=61_000, older_than_ms=60_000)
    assert list(candidates) == ["claimed-old", "edge", "old"]
    assert candidates["claimed-old"] == b"bob 2 1000 c"  # the record as read: the release compares it
    assert lost_candidates(pending, now_ms=1_000, older_than_ms=60_000) == {}


def test_a_reservation_is_as_old_as_its_last_attempt_not_its_reservation_time() -> None:
    """A repeat click that published a pending reservation again touched it: its publish may be in
    flight until a publish timeout after that, so the recovery counts the deadline from then."""
    pending: dict[bytes | str, bytes | str] = {
        b"retried": b"alice 1 1000 59000",  # reserved long ago, published again at 59 s
        b"retried-claimed": b"bob 1 1000 2000 c",
        b"untouched": b"carol 1 1000",
    }
    assert list(lost_candidates(pending, now_ms=61_000, older_than_ms=60_000)) == ["untouched"]
    assert list(lost_candidates(pending, now_ms=62_000, older_than_ms=60_000)) == [
        "retried-claimed",
        "untouched",
    ]


def test_a_claimed_pending_record_parses_like_any_other() -> None:
    assert parse_pending(b"alice 2 1790000000000 c") == ("alice", 2, 1_790_000_000_000)
    assert parse_pending("alice 2 1790000000000") == ("alice", 2, 1_790_000_000_000)


@pytest.mark.parametrize(
    ("record", "parsed"),
    [
        (b"alice 2 1000", PendingRecord("alice", 2, 1000, 1000, False)),
        (b"alice 2 1000 c", PendingRecord("alice", 2, 1000, 1000, True)),
        ("alice 2 1000 5000", PendingRecord("alice", 2, 1000, 5000, False)),
        (b"alice 2 1000 5000 c", PendingRecord("alice", 2, 1000, 5000, True)),
    ],
)
def test_pending_records_old_and_touched_parse_alike(record: bytes | str, parsed: PendingRecord) -> None:
    assert parse_pending_record(record) == parsed
    assert parse_pending(record) == parsed[:3]  # the readers that need no more are unchanged


def test_the_reserve_reply_carries_each_reservations_time() -> None:
    reply = [b"reserved", b"r-1", 1, 1790000000123, b"unconfirmed", b"r-0", 2, 1790000000000,
             b"soldout", b"", 0, 0, 7]  # fmt: skip
    results, remaining = parse_reserve_reply(reply)
    assert results == [
        ReserveResult(Outcome.RESERVED, "r-1", 1, 1_790_000_000_123),
        ReserveResult(Outcome.UNCONFIRMED, "r-0", 2, 1_790_000_000_000),
        ReserveResult(Outcome.SOLD_OUT, "", 0, 0),
    ]
    assert remaining == 7


def test_released_events_name_the_user() -> None:
    assert released_user("released alice@shop") == "alice@shop"
    assert released_user("released ") is None
    assert released_user("restocked") is None
    assert released_user("soldout") is None


def test_the_settled_set_is_one_of_the_sales_keys() -> None:
    keys = SaleKeys("s1")
    assert keys.settled == "fs:{s1}:settled"
    assert keys.settled in keys.all_keys()
    assert keys.settled in keys.release_keys()


def test_plan_rebuild_counts_the_gate_from_the_orders() -> None:
    live = [("r-1", "alice", 2), ("r-2", "bob", 1)]
    plan = plan_rebuild(10, 7, live, ["r-0"], ["r-9"])
    assert plan.stock == 7
    assert plan.initial == 10
    assert plan.buyers == [("alice", "r-1"), ("bob", "r-2")]
    assert plan.settled == ["r-0", "r-9"]
    assert rebuild_args(plan.stock, plan.initial, plan.buyers, plan.settled) == [
        7, 10, 2, "alice", "r-1", "bob", "r-2", "r-0", "r-9",
    ]  # fmt: skip


def test_plan_rebuild_refuses_when_the_ledger_disagrees() -> None:
    with pytest.raises(PrewarmRefused, match="ledger says 8"):
        plan_rebuild(10, 8, [("r-1", "alice", 3)], [], [])


def test_return_args_are_flat_triples() -> None:
    assert return_args([("r-1", "alice", 2), ("r-2", "bob", 1)]) == ["r-1", "alice", 2, "r-2", "bob", 1]


@pytest.mark.parametrize(
    ("outcome", "status", "body"),
    [
        (payment.Paid.PAID, 200, {"reservationId": "r-1", "state": "paid"}),
        (payment.Paid.EXPIRED, 409, {"error": "expired"}),
        (payment.Paid.NOT_ORDERED_YET, 409, {"error": "not_ordered_yet"}),
        (payment.Paid.NOT_FOUND, 404, {"error": "not_found"}),
    ],
)
def test_payment_answers(outcome: payment.Paid, status: int, body: dict[str, str]) -> None:
    answer = payment.answer(outcome, "r-1")
    assert answer.status == status
    assert body.items() <= json.loads(answer.body).items()
    headers = dict(answer.headers)
    assert (b"retry-after" in headers) is (outcome is payment.Paid.NOT_ORDERED_YET)


def _consumer_settings(**extra: Any) -> ConsumerSettings:
    now = datetime.now(UTC)
    return ConsumerSettings(
        sale_name="s",
        sale_id="s1",
        stock=5,
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        redis_url="redis://x",
        kafka_bootstrap_servers="k:9092",
        **{"database_url": "postgresql://x", **extra},
    )


def test_the_settlement_settings_have_their_bounds() -> None:
    assert _consumer_settings().lost_reservation_seconds == 60
    assert _consumer_settings(payment_timeout_seconds=1).payment_timeout_seconds == 1
    with pytest.raises(ValidationError):
        _consumer_settings(lost_reservation_seconds=4)
    with pytest.raises(ValidationError):
        _consumer_settings(payment_timeout_seconds=0)


def test_a_lost_reservation_deadline_too_close_to_the_publish_timeout_is_refused() -> None:
    """The recovery may give a reservation back only once every publish of it has ended: the deadline
    must be at least twice the gateways' publish timeout plus 2 s (docs/settlement.md)."""
    assert _consumer_settings().publish_timeout_seconds == 10
    unsafe = r"FLASHSALE_LOST_RESERVATION_SECONDS \(5\) must be at least 22"
    with pytest.raises(ValidationError, match=unsafe):
        _consumer_settings(lost_reservation_seconds=5)  # below the default 10 s publish timeout
    with pytest.raises(ValidationError, match="at least 8"):
        _consumer_settings(lost_reservation_seconds=7, publish_timeout_seconds=3)
    safe = _consumer_settings(lost_reservation_seconds=8, publish_timeout_seconds=3)
    assert (safe.lost_reservation_seconds, safe.publish_timeout_seconds) == (8, 3)
    assert safe_lost_reservation_seconds(10) == 22
    with pytest.raises(ValidationError):
        _consumer_settings(publish_timeout_seconds=0.5, lost_reservation_seconds=5)


class _FakeRedis:
    def __init__(self) -> None:
        self.reads = 0

    async def mget(self, *_: str) -> list[bytes | None]:
        self.reads += 1
        return [b"1", b"3"]


def test_the_watcher_forgets_a_released_user_and_a_restock_clears_sold_out() -> None:
    forgotten: list[str] = []
    board = StatusBoard(
        sale="s",
        starts_at=datetime.now(UTC) - timedelta(hours=1),
        ends_at=datetime.now(UTC) + timedelta(hours=1),
        order_path="/api/buy/x",
        render_js=lambda body: body,
    )
    board.observe(True, 0)
    assert board.sold_out
    client = _FakeRedis()
    watcher = SaleWatcher(client, SaleKeys("s1"), board, 1.0, forget=forgotten.append)  # type: ignore[arg-type]
    asyncio.run(watcher._on_event(b"released alice"))
    assert forgotten == ["alice"]
    assert client.reads == 0  # a release alone reads nothing; a restock has its own event
    assert board.sold_out
    asyncio.run(watcher._on_event(b"restocked"))
    assert not board.sold_out
    assert board.remaining == 3
    assert client.reads == 1


@pytest.mark.parametrize("command", ["prewarm", "reconcile", "retire"])
def test_the_operator_commands_have_help_without_settings(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"])
    assert exited.value.code == 0
    assert f"usage: flashsale {command}" in capsys.readouterr().out


def test_reconcile_without_connections_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("FLASHSALE_REDIS_URL", "FLASHSALE_DATABASE_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["reconcile", "--sale", "s1"]) == 2
    assert capsys.readouterr().err.startswith("flashsale reconcile: ")


class _LostRedis:
    async def mget(self, *_: str) -> list[bytes | None]:
        return [None, None]


def test_a_lost_gate_keeps_the_flag_so_buyers_get_503_not_a_paused_404() -> None:
    board = StatusBoard(
        sale="s",
        starts_at=datetime.now(UTC) - timedelta(hours=1),
        ends_at=datetime.now(UTC) + timedelta(hours=1),
        order_path="/api/buy/x",
        render_js=lambda body: body,
    )
    watcher = SaleWatcher(_LostRedis(), SaleKeys("s1"), board, 1.0)  # type: ignore[arg-type]
    asyncio.run(watcher.read_now())  # never built yet: closed
    assert not board.accepting
    board.observe(True, 5)  # built and open, then Redis loses every key
    asyncio.run(watcher.read_now())
    assert board.accepting
    assert board.remaining is None
    assert not board.sold_out
