"""The reconciliation's verdict on hand-made numbers: every rule, each failure named in the report."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from flashsale_sale.reconcile import Numbers, judge

# A sale of 100 units, mid-flight: 40 in the gate, 5 pending, 50 in live orders, 5 expired not returned.
BALANCED = Numbers(
    sale_id="s-1",
    initial=100,
    per_user_limit=2,
    retired=False,
    ledger=50,
    gate_stock=40,
    gate_initial=100,
    pending_units=5,
    live_units=50,
    unreturned_units=5,
    orders={"ordered": 30, "paid": 20, "expired": 7},
)


def test_a_balanced_sale_passes_with_nothing_unaccounted() -> None:
    verdict = judge(BALANCED)
    assert verdict.ok
    assert verdict.unaccounted == 0
    assert verdict.problems == []
    report = verdict.report()
    assert report.startswith("sale s-1: OK")
    assert "(0 unaccounted)" in report


def test_a_sold_out_and_settled_sale_passes() -> None:
    done = replace(BALANCED, gate_stock=0, pending_units=0, live_units=100, unreturned_units=0, ledger=0)
    assert judge(done).ok


def test_a_missing_unit_is_reported_as_unaccounted() -> None:
    verdict = judge(replace(BALANCED, gate_stock=39))
    assert not verdict.ok
    assert verdict.unaccounted == 1
    assert verdict.problems == ["1 units unaccounted for (counted fewer than the initial stock)"]
    assert "MISMATCH" in verdict.report()
    assert "PROBLEM: 1 units unaccounted" in verdict.report()


def test_a_unit_counted_twice_is_an_oversell_risk() -> None:
    verdict = judge(replace(BALANCED, gate_stock=42))
    assert verdict.unaccounted == -2
    assert any("counted twice" in problem for problem in verdict.problems)


def test_a_ledger_that_disagrees_with_the_orders_fails() -> None:
    verdict = judge(replace(BALANCED, ledger=49))
    assert not verdict.ok
    assert verdict.unaccounted == 0  # the gate side balances; the record does not
    assert verdict.problems == ["the ledger says 49 remaining, the orders say 50 (100 - 50 not expired)"]


def test_a_missing_ledger_fails() -> None:
    assert judge(replace(BALANCED, ledger=None)).problems == ["the sale has no stock ledger row"]


def test_a_missing_gate_fails_and_says_how_to_rebuild_it() -> None:
    verdict = judge(replace(BALANCED, gate_stock=None, gate_initial=None, pending_units=0))
    assert not verdict.ok
    assert verdict.unaccounted is None
    assert "flashsale prewarm" in verdict.problems[0]
    assert "gate stock" not in verdict.report()  # no sum without a gate


def test_a_retired_sale_without_its_gate_passes_on_the_record_alone() -> None:
    retired = replace(BALANCED, retired=True, gate_stock=None, gate_initial=None, pending_units=0)
    assert judge(retired).ok
    assert not judge(replace(retired, ledger=7)).ok


def test_a_gate_built_with_another_stock_fails() -> None:
    verdict = judge(replace(BALANCED, gate_initial=90))
    assert verdict.problems == ["the gate was built with 90 units, the record says 100"]


def test_a_negative_gate_fails_even_when_the_sum_balances() -> None:
    verdict = judge(replace(BALANCED, gate_stock=-1, pending_units=46))
    assert verdict.unaccounted == 0
    assert verdict.problems == ["the gate's stock is negative (-1)"]


def test_live_orders_above_the_initial_stock_are_an_oversell() -> None:
    verdict = judge(
        replace(BALANCED, live_units=101, gate_stock=0, pending_units=0, unreturned_units=0, ledger=-1)
    )
    assert any(problem.startswith("OVERSOLD: 101 units") for problem in verdict.problems)


def test_users_above_the_limit_are_named() -> None:
    verdict = judge(replace(BALANCED, users_above_limit={"bob": 3, "alice": 4}))
    assert verdict.problems == [
        "user alice holds 4 units, above the per-user limit 2",
        "user bob holds 3 units, above the per-user limit 2",
    ]


def test_a_reservation_given_back_and_kept_as_an_order_is_named() -> None:
    verdict = judge(replace(BALANCED, given_back_and_live=["r-9"]))
    assert verdict.problems == ["reservation r-9 was given back to the gate and is also a live order"]


def test_every_problem_is_reported_at_once() -> None:
    verdict = judge(replace(BALANCED, gate_stock=30, ledger=0, users_above_limit={"u": 9}))
    assert len(verdict.problems) == 3


@pytest.mark.parametrize("numbers", [BALANCED, replace(BALANCED, gate_stock=None, gate_initial=None)])
def test_the_json_has_every_number(numbers: Numbers) -> None:
    verdict = judge(numbers)
    payload = json.loads(verdict.to_json())
    assert payload["ok"] is verdict.ok
    assert payload["unaccountedUnits"] == verdict.unaccounted
    assert payload["problems"] == verdict.problems
    for name in ("initial", "ledger", "gate_stock", "gate_initial", "pending_units", "live_units",
                 "unreturned_units", "per_user_limit", "retired", "sale_id"):  # fmt: skip
        assert payload[name] == getattr(numbers, name)
    assert payload["orders"] == {"ordered": 30, "paid": 20, "expired": 7}
