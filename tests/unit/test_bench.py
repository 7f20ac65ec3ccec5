"""The benchmark's pure parts: figures, goals, the merge, profile summaries, the mirrored server options."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.figures import Figure, Goal
from bench.merge import BEGIN, END, merge, table, write_docs
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
