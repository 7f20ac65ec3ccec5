"""The benchmark's pure parts: figures, goals, the merge, profile summaries, the mirrored server options."""

from __future__ import annotations

import ast
import math
import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.figures import Figure, Goal, percentile
from bench.keda_model import (
    Backlog,
    KedaHpa,
    Target,
    analytic_quantile,
    first_rise_delay,
    hpa_replicas,
    next_tick,
    scaler_metric,
    simulate,
)
from bench.merge import BEGIN, END, merge, table, write_docs
from bench.operator_scenarios import (
    busy_percent,
    descendants,
    first_open_ms,
    parse_proc_stat,
    staggered_starts,
    summary,
)
from bench.profiling import summarise
from bench.server_options import GRANIAN_OPTIONS


def test_a_figure_is_the_median_of_its_runs() -> None:
    assert Figure("x", "requests/s", runs=[3.0, 1.0, 2.0]).value == 2.0


def test_a_goal_with_a_baseline_judges_the_ratio() -> None:
    ceiling = Figure("ceiling_rps", "requests/s", runs=[10_000.0])
    buy = Figure("buy_rps", "requests/s", runs=[4_000.0], goal=Goal(">=", 0.35))
    buy.relate(ceiling)
    assert buy.ratio == pytest.approx(0.4)
    assert buy.met is True
    assert buy.as_json()["ratio_of"] == "buy_rps / ceiling_rps"


def test_an_inverse_ratio_reads_candidate_over_baseline() -> None:
    buy = Figure("buy_rps", "requests/s", runs=[9_000.0])
    naive = Figure("naive_rps", "requests/s", runs=[1_000.0], goal=Goal(">=", 10))
    naive.relate(buy, inverse=True)
    assert naive.ratio == pytest.approx(9.0)
    assert naive.met is False
    assert naive.as_json()["ratio_of"] == "buy_rps / naive_rps"


def test_a_goal_without_a_baseline_judges_the_value() -> None:
    assert Figure("gateway_rss_mb", "MB", runs=[120.0], goal=Goal("<", 150)).met is True
    assert Figure("gateway_rss_mb", "MB", runs=[151.0], goal=Goal("<", 150)).met is False


def _part(name: str, figures: dict[str, object]) -> dict[str, object]:
    return {"part": name, "machine": {"cores": 2, "runs": 3}, "figures": figures}


def test_merge_joins_the_parts_and_refuses_a_name_twice() -> None:
    merged = merge(
        [_part("a", {"x": {"value": 1, "unit": "u"}}), _part("b", {"y": {"value": 2, "unit": "u"}})]
    )
    assert set(merged) == {"machine", "figures"}
    assert set(merged["figures"]) == {"x", "y"}
    assert merged["machine"]["parts"] == ["a", "b"]
    with pytest.raises(ValueError, match="two parts"):
        merge([_part("a", {"x": {}}), _part("b", {"x": {}})])


def test_the_docs_table_is_rewritten_between_its_markers(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# Benchmarks\n\n{BEGIN}\nold\n{END}\n\n## Method\n")
    figure = {"value": 4000.0, "unit": "requests/s", "runs": [4000.0], "baseline": "ceiling_rps",
              "ratio": 0.4, "ratio_of": "buy_rps / ceiling_rps", "goal": ">= 0.35", "met": True}  # fmt: skip
    write_docs(docs, table(merge([_part("dataplane", {"buy_rps": figure})]), tmp_path))
    text = docs.read_text()
    assert "old" not in text
    assert "| `buy_rps` | 4,000 | requests/s | 4,000 | 0.40 (buy_rps / ceiling_rps) | >= 0.35 | yes |" in text
    assert text.endswith("## Method\n")


def test_a_profile_summary_counts_self_and_total_per_function(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(
        'process 1:"python gw";process 2:"python gw";main (app.py:1);buy (buy.py:5) 30\n'
        'process 1:"python gw";process 2:"python gw";main (app.py:1) 10\n'
        'process 1:"python gw" 60\n'
    )
    report = summarise(raw, "title")
    assert "100 samples" in report
    assert "60.0%  (no Python frame: native code)" in report
    assert "30.0%  buy (buy.py:5)" in report
    assert "40.0%  main (app.py:1)" in report
    assert '40.0%  process 2:"python gw"' in report


# The server options that matter for speed, as `granian.server.Server(...)` keywords -> CLI flags.
_GRANIAN_FLAGS: dict[str, Callable[[str], list[str]]] = {
    "interface": lambda v: ["--interface", v.rsplit(".", 1)[-1].lower()],
    "workers": lambda v: ["--workers", v],
    "loop": lambda v: ["--loop", v.rsplit(".", 1)[-1].lower()],
    "http": lambda v: ["--http", v.rsplit(".", 1)[-1].lower().removeprefix("http")],
    "backlog": lambda v: ["--backlog", v],
    "backpressure": lambda v: ["--backpressure", v],
    "runtime_threads": lambda v: ["--runtime-threads", v],
    "runtime_mode": lambda v: ["--runtime-mode", v.rsplit(".", 1)[-1].lower()],
    "task_impl": lambda v: ["--task-impl", v.rsplit(".", 1)[-1].lower()],
    "log_access": lambda v: ["--access-log" if v == "True" else "--no-access-log"],
    "websockets": lambda v: ["--ws" if v == "True" else "--no-ws"],
}
_NOT_ABOUT_SPEED = {"address", "port", "workers_kill_timeout", "log_level", "log_dictconfig", "log_enabled"}


def test_the_baselines_run_with_the_gateway_servers_options() -> None:
    """bench/server_options.py mirrors services/flashsale_gateway/server.py: a change there shows here."""
    source = Path(__file__).parents[2] / "services" / "flashsale_gateway" / "server.py"
    calls = [
        node
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Server"
    ]
    assert len(calls) == 1, "the gateway builds one granian Server"
    options = " ".join(GRANIAN_OPTIONS)
    for keyword in calls[0].keywords:
        if keyword.arg in _NOT_ABOUT_SPEED:
            continue
        assert keyword.arg in _GRANIAN_FLAGS, f"the gateway sets {keyword.arg}: mirror it in the baselines"
        expected = " ".join(_GRANIAN_FLAGS[keyword.arg](ast.unparse(keyword.value)))
        assert expected in options, f"the gateway runs with {expected}; the baselines do not"


# ---- the operator part's pure helpers ----


def test_a_percentile_interpolates_between_the_closest_ranks() -> None:
    values = [float(v) for v in range(1, 21)]  # 20 sales' skews, 1..20 ms
    assert percentile(values, 50) == pytest.approx(10.5)
    assert percentile(values, 99) == pytest.approx(19.81)  # just under the max with 20 values
    assert percentile(values, 100) == 20.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # order does not matter
    assert percentile(values, 90) == pytest.approx(statistics.quantiles(values, n=10, method="inclusive")[-1])


def test_a_percentile_of_nothing_or_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_the_skew_starts_from_the_first_open_entry_of_the_flag_history() -> None:
    assert first_open_ms([(True, 1_000), (False, 2_000), (True, 3_000)]) == 1_000
    assert first_open_ms([(False, 500), (True, 1_500)]) == 1_500  # a close before the start (a reset)
    assert first_open_ms([(False, 500)]) is None
    assert first_open_ms([]) is None


def test_starts_are_staggered_from_the_lead_by_the_spacing() -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    starts = staggered_starts(t0, 3, lead_s=20, spacing_s=1.5)
    assert [(s - t0).total_seconds() for s in starts] == [20.0, 21.5, 23.0]
    assert staggered_starts(t0, 0, lead_s=20, spacing_s=1.5) == []
    assert starts[1] - starts[0] == timedelta(seconds=1.5)


def test_a_summary_gives_p50_p99_and_max_and_busy_is_a_share_of_all_jiffies() -> None:
    assert summary([1.0, 2.0, 3.0, 40.0]) == {"p50": 2.5, "p99": 38.9, "max": 40.0}
    assert busy_percent((100, 1_000), (150, 1_200)) == 25.0
    assert busy_percent((100, 1_000), (100, 1_000)) == 0.0


def test_the_bench_tells_its_own_cpu_from_the_machines_by_process_ancestry() -> None:
    line = "4242 (python -m x) y) S 17 4242 17 0 -1 4194304 1 0 0 0 30 12 0 0 20 0 3 0 100 1 1"
    assert parse_proc_stat(line) == (17, 42)  # parent 17; utime 30 + stime 12, a ')' in the name
    parents = {1: 0, 10: 1, 11: 10, 12: 11, 20: 1, 21: 20}
    assert descendants(parents, 10) == {10, 11, 12}
    assert descendants(parents, 99) == {99}


# ---- KEDA + HPA defaults, computed for the scale-up figure ----

SALE_TARGET = Target(lag_threshold=5, partitions=4, min_replicas=1, max_replicas=4)


def test_the_hpa_follows_the_lag_outside_its_tolerance_and_within_its_bounds_and_rate() -> None:
    defaults = KedaHpa()
    assert hpa_replicas(1, 10, SALE_TARGET, defaults) == 2  # 10 messages / 5 per consumer
    assert hpa_replicas(1, 5.4, SALE_TARGET, defaults) == 1  # ratio 1.08: inside the 10% tolerance
    assert hpa_replicas(1, 6, SALE_TARGET, defaults) == 2  # ratio 1.2
    assert scaler_metric(1_000, SALE_TARGET) == 20  # capped at partitions x lagThreshold ...
    assert hpa_replicas(1, scaler_metric(1_000, SALE_TARGET), SALE_TARGET, defaults) == 4  # ... so 4
    wide = Target(lag_threshold=5, partitions=100, min_replicas=1, max_replicas=100)
    assert hpa_replicas(1, 500, wide, defaults) == 5  # max(+4 pods, +100%) per step from 1
    assert hpa_replicas(10, 500, wide, defaults) == 20  # +100% beats +4 from 10
    assert hpa_replicas(4, 0, SALE_TARGET, defaults) == 1  # down (the window is another matter)
    with pytest.raises(ValueError, match="activation"):
        hpa_replicas(0, 10, SALE_TARGET, defaults)


def test_the_first_rise_waits_for_the_next_sync_and_with_cached_metrics_for_a_poll_first() -> None:
    assert next_tick(100.0, phase=3.0, period=15.0) == 108.0
    assert next_tick(108.0, phase=3.0, period=15.0) == 108.0
    backlog = Backlog(at=100.0, lag=10)
    default, cached = KedaHpa(), KedaHpa(use_cached_metrics=True)
    assert first_rise_delay(backlog, SALE_TARGET, default, poll_phase=20.0, sync_phase=3.0) == 8.0
    # Cached: the poll at 100 (phase 10) shows it to the sync at 108; the poll at 110 (phase 20) to 123.
    assert first_rise_delay(backlog, SALE_TARGET, cached, poll_phase=10.0, sync_phase=3.0) == 8.0
    assert first_rise_delay(backlog, SALE_TARGET, cached, poll_phase=20.0, sync_phase=3.0) == 23.0
    assert first_rise_delay(Backlog(100.0, 5), SALE_TARGET, default, poll_phase=0, sync_phase=0) is None


def test_the_monte_carlo_matches_the_closed_form_and_repeats_with_its_seed() -> None:
    backlogs = [Backlog(at=1_000.0 + 17.3 * i, lag=10) for i in range(5)]
    default, cached = KedaHpa(), KedaHpa(use_cached_metrics=True)
    result = simulate(backlogs, SALE_TARGET, default, draws=10_000, seed=10)
    assert len(result.delays) == 50_000
    assert result.never == 0
    assert result.quantile(50) == pytest.approx(7.5, abs=0.3)
    assert result.quantile(99) == pytest.approx(14.85, abs=0.1)
    assert min(result.delays) >= 0
    assert max(result.delays) <= 15.0
    assert simulate(backlogs, SALE_TARGET, default, draws=100, seed=3).delays == (
        simulate(backlogs, SALE_TARGET, default, draws=100, seed=3).delays
    )
    slow = simulate(backlogs, SALE_TARGET, cached, draws=10_000, seed=10)
    assert slow.quantile(50) == pytest.approx(22.5, abs=0.6)
    assert slow.quantile(99) == pytest.approx(42.0, abs=0.5)
    never = simulate([Backlog(0.0, 5)], SALE_TARGET, default, draws=10)
    assert never.never == 10
    assert never.delays == []
    with pytest.raises(ValueError, match="no backlog"):
        simulate([], SALE_TARGET, default)


def test_the_closed_form_is_uniform_without_the_cache_and_a_trapezoid_with_it() -> None:
    default, cached = KedaHpa(), KedaHpa(use_cached_metrics=True)
    assert analytic_quantile(default, 50) == pytest.approx(7.5)
    assert analytic_quantile(default, 99) == pytest.approx(14.85)
    assert analytic_quantile(cached, 0) == 0.0
    assert analytic_quantile(cached, 50) == pytest.approx(22.5)
    assert analytic_quantile(cached, 99) == pytest.approx(42.0)  # 45 - sqrt(2 x 30 x 15 x 0.01)
    assert analytic_quantile(cached, 100) == pytest.approx(45.0)
    assert analytic_quantile(cached, 10) == pytest.approx(math.sqrt(2 * 30 * 15 * 0.1))  # the rising edge
    with pytest.raises(ValueError, match="outside"):
        analytic_quantile(default, 101)


def test_the_operator_figure_is_judged_on_its_ratio_to_kedas() -> None:
    keda = Figure("keda_hpa_scale_up_p99_s", "s", runs=[14.8])
    operator = Figure("operator_scale_up_p99_s", "s", runs=[1.2], goal=Goal("<=", 0.2))
    operator.relate(keda)
    assert operator.ratio == pytest.approx(1.2 / 14.8)
    assert operator.met is True
    assert operator.as_json()["ratio_of"] == "operator_scale_up_p99_s / keda_hpa_scale_up_p99_s"
