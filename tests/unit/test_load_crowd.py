"""`flashsale load`'s crowd and report: who comes when, and how the answers are summed up."""

from __future__ import annotations

import pytest

from flashsale_load.crowd import CrowdShape, plan_crowd
from flashsale_load.report import Outcome, Tally, outcome_of, percentile, render, report

pytestmark = pytest.mark.unit


def test_the_same_shape_and_run_give_the_same_crowd_in_order_of_arrival() -> None:
    shape = CrowdShape(users=500, duration_s=30, seed=4)
    crowd = plan_crowd(shape, "r1")
    assert crowd == plan_crowd(shape, "r1")
    assert [s.arrives_at_s for s in crowd] == sorted(s.arrives_at_s for s in crowd)
    assert len({s.user for s in crowd}) == 500


def test_early_clickers_arrive_in_the_first_seconds_and_the_rest_later() -> None:
    crowd = plan_crowd(CrowdShape(users=2000, duration_s=60, early_share=0.5, early_window_s=2), "r")
    early = [s for s in crowd if s.arrives_at_s < 2]
    assert 900 < len(early) < 1100
    assert max(s.arrives_at_s for s in crowd) < 60


def test_the_shares_of_bots_repeat_clickers_and_payers_are_as_asked() -> None:
    crowd = plan_crowd(
        CrowdShape(users=4000, duration_s=10, bot_share=0.1, repeat_share=0.25, payer_share=0.6), "r"
    )
    assert 300 < sum(s.bot for s in crowd) < 500
    assert 850 < sum(s.clicks == 2 for s in crowd) < 1150
    assert 2200 < sum(s.pays for s in crowd) < 2600


@pytest.mark.parametrize("bad", [{"users": 0}, {"duration_s": 0}, {"bot_share": 1.5}, {"quantity": 0}])
def test_a_crowd_without_bounds_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"crowd|share"):
        CrowdShape(**{"users": 10, "duration_s": 5, **bad})  # type: ignore[arg-type]


def test_every_status_has_an_outcome() -> None:
    assert [outcome_of(s) for s in (202, 410, 409, 429, 503, 401, 404, 422, 500, 302, 0)] == [
        Outcome.ACCEPTED, Outcome.SOLD_OUT, Outcome.FEWER_LEFT, Outcome.LIMITED, Outcome.SHED,
        Outcome.REFUSED, Outcome.NOT_LIVE, Outcome.INVALID, Outcome.SERVER_ERROR, Outcome.OTHER,
        Outcome.NETWORK,
    ]  # fmt: skip


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile([], 0.5)) == (50.0, 99.0, 0.0)


def test_the_report_sums_the_books_accepted_ordered_paid() -> None:
    tally = Tally()
    for at, status in enumerate((202, 202, 202, 410, 503, 401)):
        tally.answered(status, 0.010 * (at + 1), float(at))
    tally.reservations = {"a": 1, "b": 2, "c": 1}
    tally.states = {"a": "paid", "b": "ordered", "c": "reserved"}
    tally.paid = {"a"}
    summary = report(tally, sale="ns/drop", users=6, duration_s=3.0)
    assert summary["buy_answers"] == {"accepted": 3, "sold_out": 1, "shed": 1, "refused": 1}
    assert summary["sold_out_after_s"] == 3.0
    assert summary["accepted"] == {"reservations": 3, "units": 4}
    assert summary["ordered"] == {"reservations": 2, "units": 3}
    assert summary["paid"] == {"reservations": 1, "units": 1}
    assert summary["latency_ms"]["p50"] == 30.0
    assert summary["reservation_ids"] == {"accepted": ["a", "b", "c"], "paid": ["a"]}
    text = render(summary)
    assert "sold out after: 3.0 s from going live" in text
    assert "paid:     1 reservations (1 units)" in text
