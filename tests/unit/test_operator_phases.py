"""The sale's phases follow the clock, the gate and what was recorded - never a remembered edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flashsale_operator.phases import Decision, Gate, Recorded, decide, prewarm_at
from flashsale_operator.spec import FlashSaleSpec, Phase, parse_spec

pytestmark = pytest.mark.unit

START = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
NO_GATE = Gate(built=False, remaining=None, open=False)
BUILT = Gate(built=True, remaining=100, open=False)
OPEN = Gate(built=True, remaining=100, open=True)
EMPTY_OPEN = Gate(built=True, remaining=0, open=True)
NEW = Recorded()
STARTED = Recorded(Phase.LIVE, prewarmed_at=START - timedelta(minutes=5), started_at=START)


def sale(**changes: object) -> FlashSaleSpec:
    spec = {
        "product": {"sku": "KETTLE-1", "name": "Kettle", "price": "49.00", "currency": "EUR"},
        "stock": 100,
        "perUserLimit": 1,
        "schedule": {"startsAt": START.isoformat(), "endsAt": END.isoformat(), "prewarmSeconds": 300},
        "paymentTimeoutSeconds": 900,
        **changes,
    }
    return parse_spec(spec)


def at(offset_seconds: float) -> datetime:
    return START + timedelta(seconds=offset_seconds)


@pytest.mark.parametrize(
    ("now", "gate", "recorded", "expected"),
    [
        # Before the prewarm window: nothing to do until it opens.
        (at(-600), NO_GATE, NEW, Decision(Phase.SCHEDULED, wake_at=at(-300))),
        # In the window: build the gate, then wait for the start.
        (at(-300), NO_GATE, NEW, Decision(Phase.PREWARMING, build_gate=True, wake_at=START)),
        (at(-10), BUILT, NEW, Decision(Phase.READY, wake_at=START)),
        # The start second: the flag goes on.
        (at(0), BUILT, Recorded(Phase.READY), Decision(Phase.LIVE, flag=True, wake_at=END)),
        # Already on (a restart right after the flip): it is not flipped again.
        (at(0.2), OPEN, Recorded(Phase.READY), Decision(Phase.LIVE, wake_at=END)),
        # Sold out keeps the flag on: returned stock sells again at once.
        (at(30), EMPTY_OPEN, STARTED, Decision(Phase.SOLD_OUT, wake_at=END)),
        # The end closes the sale for good.
        (at(3600), OPEN, STARTED, Decision(Phase.ENDED, flag=False)),
        (at(3700), BUILT, Recorded(Phase.ENDED, ended_at=END), Decision(Phase.ENDED)),
        # Operator down across the start: it builds late, then opens.
        (at(5), NO_GATE, NEW, Decision(Phase.PREWARMING, build_gate=True, wake_at=END)),
        # Redis lost the gate while live: rebuild, keeping the recorded phase.
        (at(60), NO_GATE, STARTED, Decision(Phase.LIVE, build_gate=True, wake_at=END)),
    ],
)
def test_the_phase_follows_the_clock_and_the_gate(
    now: datetime, gate: Gate, recorded: Recorded, expected: Decision
) -> None:
    assert decide(sale(), now, gate, recorded) == expected


def test_a_flag_left_on_before_the_start_is_closed() -> None:
    assert decide(sale(), at(-10), OPEN, NEW) == Decision(Phase.READY, flag=False, wake_at=START)


def test_paused_closes_a_live_sale_and_unpausing_reopens_it() -> None:
    paused = decide(sale(paused=True), at(60), OPEN, STARTED)
    assert paused == Decision(Phase.PAUSED, flag=False, wake_at=END)
    closed = Gate(built=True, remaining=100, open=False)
    reopened = decide(sale(), at(61), closed, Recorded(Phase.PAUSED, START, START))
    assert reopened == Decision(Phase.LIVE, flag=True, wake_at=END)


def test_a_started_sale_stays_started_when_its_start_moves_later() -> None:
    later = START + timedelta(minutes=30)
    moved = sale(schedule={"startsAt": later.isoformat(), "endsAt": END.isoformat()})
    assert decide(moved, at(60), OPEN, STARTED).phase is Phase.LIVE


def test_the_ended_sale_stays_ended_when_its_end_moves_later() -> None:
    longer = sale(schedule={"startsAt": START.isoformat(), "endsAt": (END + timedelta(hours=1)).isoformat()})
    ended = Recorded(Phase.ENDED, START, START, END)
    assert decide(longer, END + timedelta(minutes=1), BUILT, ended).phase is Phase.ENDED


def test_a_rebuild_reopens_only_a_started_sale() -> None:
    assert decide(sale(), at(60), NO_GATE, STARTED).rebuilding
    assert not decide(sale(), at(-300), NO_GATE, NEW).rebuilding


def test_the_prewarm_window_opens_prewarm_seconds_before_the_start() -> None:
    assert prewarm_at(sale()) == at(-300)
