"""Deleting a sale never destroys accepted reservations: the drain's decisions, from one look at the topic.

The teardown waits while the consumer group lags on the sale's topic (or Kafka cannot say), however
long; it goes on when nothing is left, or when the platform team's escape hatch drops the rest -
which keeps the topic, so what is left stays somewhere that does not depend on the failing store.
"""

from __future__ import annotations

import pytest

from flashsale_operator.conditions import Reason
from flashsale_operator.config import OperatorConfig
from flashsale_operator.drain import (
    DROP_ANNOTATION,
    DROP_DEDICATED_ANNOTATION,
    Seen,
    Verdict,
    decide,
    drain_status,
    ranges,
    warnings_due,
)
from flashsale_operator.render import SaleRef
from flashsale_operator.runtime import SaleState
from flashsale_sale.lag import partition_lag, unwritten_range

pytestmark = pytest.mark.unit

TOPIC = "flashsale.sale.abc"
DROP = {DROP_ANNOTATION: "true"}


def seen(left: int | None, *, why: str | None = None, dedicated: bool = False, waited: float = 3.0) -> Seen:
    unwritten = {0: (4, 4 + left)} if left else {}
    return Seen(TOPIC, left, unwritten, waited, why, dedicated)


def test_no_lag_after_the_gateways_are_gone_means_every_accepted_reservation_is_written() -> None:
    decision = decide(seen(0), {}, overdue=True)
    assert decision.verdict is Verdict.DRAINED
    assert decision.reason is Reason.DRAINED


def test_a_lag_holds_the_finalizer_and_says_how_many_are_left_where_and_why() -> None:
    decision = decide(
        seen(7, why="PostgreSQL does not answer the operator: connection refused"), {}, overdue=True
    )
    assert decision.verdict is Verdict.WAIT
    assert decision.reason is Reason.ORDERS_UNWRITTEN
    assert "7 accepted reservation message(s) not written" in decision.message
    assert f"consumer group lag 7 on topic {TOPIC}" in decision.message
    assert "PostgreSQL does not answer" in decision.message


def test_however_long_it_takes_the_drain_never_gives_up_by_itself() -> None:
    assert decide(seen(1, waited=10 * 24 * 3600.0), {}, overdue=True).verdict is Verdict.WAIT


def test_an_unreadable_lag_is_never_taken_for_zero() -> None:
    decision = decide(seen(None, why="KafkaError: timed out"), {}, overdue=True)
    assert decision.verdict is Verdict.WAIT
    assert decision.reason is Reason.LAG_UNKNOWN
    assert "lag unknown" in decision.message
    assert "timed out" in decision.message


def test_an_unreadable_lag_is_not_dropped_either_there_is_no_range_to_record() -> None:
    assert decide(seen(None), DROP, overdue=True).verdict is Verdict.WAIT


def test_the_escape_hatch_drops_the_rest_of_a_shared_topic_and_names_its_offsets() -> None:
    decision = decide(Seen(TOPIC, 5, {0: (10, 12), 2: (0, 3)}, 9.0), DROP, overdue=True)
    assert decision.verdict is Verdict.DROP
    assert decision.reason is Reason.UNWRITTEN_KEPT
    assert "5 accepted reservation message(s)" in decision.message
    assert f"kept in topic {TOPIC}: partition 0 offsets 10..12, partition 2 offsets 0..3" in decision.message


@pytest.mark.parametrize("value", ["false", "", "yes", "1"])
def test_only_an_explicit_true_opens_the_escape_hatch(value: str) -> None:
    assert decide(seen(2), {DROP_ANNOTATION: value}, overdue=True).verdict is Verdict.WAIT


def test_the_escape_hatch_waits_for_the_warning_threshold_before_it_drops_anything() -> None:
    """An annotation set before the deletion never drops what the consumers were about to write."""
    early = decide(seen(4), DROP, overdue=False)
    assert early.verdict is Verdict.WAIT
    assert "applies once overdue" in early.message
    assert decide(seen(4), DROP, overdue=True).verdict is Verdict.DROP


def test_nothing_left_needs_no_escape_hatch() -> None:
    assert decide(seen(0), DROP, overdue=True).verdict is Verdict.DRAINED


def test_a_dedicated_queue_is_not_dropped_without_its_own_acknowledgement() -> None:
    refused = decide(seen(3, dedicated=True), DROP, overdue=True)
    assert refused.verdict is Verdict.WAIT
    assert refused.reason is Reason.DROP_REFUSED
    assert DROP_DEDICATED_ANNOTATION in refused.message
    both = decide(seen(3, dedicated=True), {**DROP, DROP_DEDICATED_ANNOTATION: "true"}, overdue=True)
    assert both.verdict is Verdict.DROP
    assert both.reason is Reason.UNWRITTEN_LOST
    assert "partition 0 offsets 4..7" in both.message


def test_the_second_annotation_alone_drops_nothing() -> None:
    assert (
        decide(seen(3, dedicated=True), {DROP_DEDICATED_ANNOTATION: "true"}, overdue=True).verdict
        is Verdict.WAIT
    )


def test_one_warning_per_threshold_period_the_drain_lasts() -> None:
    assert [warnings_due(w, 5.0) for w in (0.0, 4.9, 5.0, 9.9, 10.0, 15.2)] == [0, 0, 1, 1, 2, 3]


def test_the_warning_threshold_is_a_setting_of_two_minutes_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    required = {
        "FLASHSALE_OPERATOR_REDIS_URL": "redis://127.0.0.1:1",
        "FLASHSALE_OPERATOR_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:2",
        "FLASHSALE_OPERATOR_DATABASE_URL": "postgresql://x@127.0.0.1:3/x",
        "FLASHSALE_OPERATOR_USER_TOKEN_KEY": "k" * 32,
        "FLASHSALE_OPERATOR_PAYMENT_KEY": "p" * 32,
        "FLASHSALE_OPERATOR_GATEWAY_DATABASE_URL": "postgresql://g@127.0.0.1:3/x",
        "FLASHSALE_OPERATOR_CONSUMER_DATABASE_URL": "postgresql://c@127.0.0.1:3/x",
    }
    for key, value in required.items():
        monkeypatch.setenv(key, value)
    assert OperatorConfig().drain_warning_seconds == 120.0  # type: ignore[call-arg]
    monkeypatch.setenv("FLASHSALE_OPERATOR_DRAIN_WARNING_SECONDS", "5")
    assert OperatorConfig().drain_warning_seconds == 5.0  # type: ignore[call-arg]


def test_the_status_records_each_partitions_unwritten_range() -> None:
    status = drain_status(
        Seen(TOPIC, 5, {2: (0, 3), 0: (10, 12)}, 1.0), since="2026-01-01T00:00:00Z", dropped=True
    )
    assert status == {
        "topic": TOPIC,
        "since": "2026-01-01T00:00:00Z",
        "unwritten": 5,
        "dropped": True,
        "partitions": [
            {"partition": 0, "fromOffset": 10, "toOffset": 12},
            {"partition": 2, "fromOffset": 0, "toOffset": 3},
        ],
    }
    assert ranges({}) == "no offsets"


@pytest.mark.parametrize(
    ("committed", "low", "high", "expected"),
    [
        (5, 0, 9, (5, 9)),  # committed up to 5: 5..8 left
        (-1, 0, 4, (0, 4)),  # never committed: everything still in the log
        (-1, 3, 3, (3, 3)),  # never committed, empty log: nothing
        (2, 6, 9, (6, 9)),  # retention deleted below the commit: only what is still in the log
        (9, 0, 9, (9, 9)),  # all written
    ],
)
def test_the_unwritten_range_is_exactly_the_lag(
    committed: int, low: int, high: int, expected: tuple[int, int]
) -> None:
    first, end = unwritten_range(committed, low, high)
    assert (first, end) == expected
    assert end - first == partition_lag(committed, low, high)


def test_a_sale_first_seen_while_being_deleted_has_no_loop_to_wait_for() -> None:
    """kopf starts no daemon for an object being deleted: an operator restarted mid-teardown must not
    wait for the sale's loops to stop (they never started), or its finalizer would hold forever."""
    sale = SaleState(SaleRef(name="drop", namespace="shop", uid="u-1"))
    assert sale.daemon_done.is_set()
    assert sale.scaler_done.is_set()
