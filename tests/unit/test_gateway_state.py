"""The sale's public state and the shared status answer (pure: no Redis, a fake clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from flashsale_gateway.state import SaleState, StatusBoard, sale_state

START, END = 1_000.0, 2_000.0


@pytest.mark.parametrize(
    ("flag", "sold_out", "now", "expected"),
    [
        (False, False, 500.0, SaleState.SCHEDULED),
        (False, False, 1_500.0, SaleState.PAUSED),
        (True, False, 1_500.0, SaleState.LIVE),
        (True, False, 500.0, SaleState.LIVE),  # the flag is the authority, not the clock
        (True, True, 1_500.0, SaleState.SOLD_OUT),
        (False, True, 1_500.0, SaleState.PAUSED),
        (True, False, 2_000.0, SaleState.ENDED),  # never after endsAt, whatever the flag
        (False, False, 9_000.0, SaleState.ENDED),
    ],
)
def test_state_follows_the_flag_and_the_clock_names_the_wait(
    flag: bool, sold_out: bool, now: float, expected: SaleState
) -> None:
    assert sale_state(flag, sold_out, now, START, END) is expected


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def board(clock: Clock, builds: list[bytes]) -> StatusBoard:
    return StatusBoard(
        sale="drop",
        starts_at=datetime.fromtimestamp(START, UTC),
        ends_at=datetime.fromtimestamp(END, UTC),
        order_path="/api/buy/secret",
        render_js=lambda status: b"js:" + status,
        on_change=lambda b: builds.append(b.status_json),
        clock=clock,
    )


def current(sale: StatusBoard) -> SaleState:
    return sale.state


def test_the_order_path_is_in_the_status_only_while_live() -> None:
    clock, builds = Clock(500.0), list[bytes]()
    sale = board(clock, builds)
    assert json.loads(sale.status_json) == {
        "sale": "drop",
        "state": "scheduled",
        "startsAt": "1970-01-01T00:16:40Z",
        "endsAt": "1970-01-01T00:33:20Z",
        "orderPath": None,
    }
    assert not sale.accepting
    sale.observe(True, 10)
    assert json.loads(sale.status_json)["orderPath"] == "/api/buy/secret"
    assert sale.accepting
    assert sale.status_js == b"js:" + sale.status_json
    sale.set_sold_out(True)
    assert json.loads(sale.status_json)["state"] == "soldout"
    assert json.loads(sale.status_json)["orderPath"] is None
    assert sale.accepting  # the path still answers (410), it is no longer advertised
    clock.now = END
    sale.refresh()
    assert json.loads(sale.status_json)["state"] == "ended"
    assert not sale.accepting


def test_the_answer_is_one_shared_object_rebuilt_only_on_change() -> None:
    clock, builds = Clock(1_500.0), list[bytes]()
    sale = board(clock, builds)
    sale.observe(True, 10)
    shared = sale.status_json
    sale.observe(True, 10)
    sale.refresh()
    assert sale.status_json is shared
    sale.note_remaining(9)  # remaining alone waits for the 250 ms refresh
    assert sale.status_json is shared
    clock.now += 0.3
    sale.refresh()
    assert json.loads(sale.status_json)["remaining"] == 9
    assert len(builds) == 3


def test_a_reply_with_nothing_left_flips_the_local_sold_out_flag_at_once() -> None:
    clock, builds = Clock(1_500.0), list[bytes]()
    sale = board(clock, builds)
    sale.observe(True, 2)
    sale.note_remaining(0)
    assert sale.sold_out
    assert sale.state is SaleState.SOLD_OUT
    sale.set_sold_out(False)  # a "restocked" event
    assert current(sale) is SaleState.LIVE
    sale.note_remaining(-1)  # no gate: unknown, not sold out
    assert sale.remaining is None
    assert not sale.sold_out
