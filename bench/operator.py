"""`make bench-operator`: the FlashSale operator's timing on a real control plane (issue 9).

    python -m bench.operator [--quick] [--sales N] [--lead S] [--spacing S] [--out FILE]

Starts its own local platform with its cluster, installs the operator as a pod, runs every figure
(bench/operator_scenarios.py): the start flag's skew over N sales, the delay of `spec.paused`, and
apply-to-ready; then (bench/operator_scaling.py) the time from a Kafka backlog to more consumers,
beside KEDA + HPA defaults computed from their documented algorithm (bench/keda_model.py). Then it
deletes every FlashSale and stops everything it started - also on Ctrl-C, on SIGTERM and when the
time budget runs out - and writes this part's figures as JSON (bench/merge.py folds the parts of
`make bench` into bench/results.json and docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine
from bench.figures import Figure
from bench.operator_scaling import ScalePlan, ScaleUp
from bench.operator_scenarios import OperatorScenario, Plan, say
from bench.runs import BudgetExceeded, install_signals, print_table
from flashsale_dev.platform import LocalPlatform

PART = "operator"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan, scale = _plan(args)
    out = Path(args.out)
    install_signals(args.budget)
    work = Path(tempfile.mkdtemp(prefix="flashsale-bench-operator-"))
    work.chmod(0o755)  # the postgres user reaches its data directory through it
    platform = LocalPlatform(work / "platform", with_cluster=True)
    scenario = OperatorScenario(platform, plan)
    started = time.monotonic()
    figures: dict[str, Figure] = {}
    try:
        say(f"platform with its cluster starting in {work}")
        platform.start()
        scenario.conditions["platform_start_s"] = round(time.monotonic() - started, 1)
        figures = scenario.run()
        figures.update(ScaleUp(scenario, scale).run())
    except (KeyboardInterrupt, BudgetExceeded) as stop:
        say(f"stopped: {type(stop).__name__}; cleaning up")
        return 130
    finally:
        signal.alarm(0)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)  # cleanup is bounded; let it finish
        scenario.stop()
        platform.stop()
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - started
    part = _part(plan, scale, scenario.conditions, figures, seconds=seconds, quick=args.quick)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(part, indent=2) + "\n")
    print_table(figures)
    say(f"wrote {out} in {time.monotonic() - started:.0f} s")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.operator", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="5 sales, 3 pause cycles, 3 backlogs (noisy figures)"
    )
    parser.add_argument("--sales", type=int, help="FlashSales whose start skew is measured (default 20)")
    parser.add_argument(
        "--lead", type=float, help="seconds from creation to the first start (default 30 + 2 per sale)"
    )
    parser.add_argument("--spacing", type=float, default=1.5, help="seconds between two sales' starts")
    parser.add_argument(
        "--prewarm", type=int, default=300, help="spec.schedule.prewarmSeconds (default: the CRD's, 300)"
    )
    parser.add_argument("--stock", type=int, default=10, help="units per sale")
    parser.add_argument("--pause-cycles", type=int, help="pause+unpause pairs on one live sale (default 10)")
    parser.add_argument("--pause-replicas", type=int, default=2, help="gateway replicas of the paused sale")
    parser.add_argument("--scale-runs", type=int, help="backlogs whose scale-up is timed (default 10)")
    parser.add_argument(
        "--scale-buyers", type=int, default=10, help="orders per backlog (default 10: 2 x lagThreshold 5)"
    )
    parser.add_argument("--budget", type=float, help="stop everything after this many seconds")
    parser.add_argument("--out", default="bench/out/operator.json", help="this part's figures (JSON)")
    return parser


def _plan(args: argparse.Namespace) -> tuple[Plan, ScalePlan]:
    quick = bool(args.quick)
    sales = args.sales or (5 if quick else 20)
    if sales < 1:
        raise SystemExit("--sales must be at least 1")
    lead = args.lead if args.lead is not None else 30.0 + 2.0 * sales
    plan = Plan(
        sales=sales,
        lead_s=lead,
        spacing_s=args.spacing,
        prewarm_s=args.prewarm,
        stock=args.stock,
        pause_cycles=args.pause_cycles or (3 if quick else 10),
        pause_replicas=args.pause_replicas,
        ready_timeout_s=lead + sales * args.spacing + 120,
    )
    scale = ScalePlan(runs=args.scale_runs or (3 if quick else 10), buyers=args.scale_buyers)
    if scale.runs < 1 or scale.buyers <= scale.lag_threshold:
        raise SystemExit(f"--scale-runs must be at least 1, --scale-buyers above {scale.lag_threshold}")
    if args.budget is None:  # generous: platform and operator start, the schedule, pauses, backlogs, teardown
        schedule = plan.lead_s + plan.sales * plan.spacing_s
        backlogs = 120 + scale.runs * 40
        args.budget = 420 + schedule + plan.pause_cycles * 2 * 35 / 5 + backlogs + plan.cleanup_timeout_s + 60
    return plan, scale


def _part(
    plan: Plan,
    scale: ScalePlan,
    conditions: dict[str, Any],
    figures: dict[str, Figure],
    *,
    seconds: float,
    quick: bool,
) -> dict[str, Any]:
    return {
        "part": PART,
        "machine": {
            **machine.describe(),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": quick,
            "operator": "the flashsale/operator image as a pod on the system pool (manifests/ as they are), "
            "status interval 1 s; the local cluster's control plane, Redis, Kafka and PostgreSQL on "
            "the same cores",
            "operator_sales": plan.sales,
            "operator_sale_shape": "gateway replicas 1 (the paused sale: "
            f"{plan.pause_replicas}), consumers min = max = 1, queue shared with 1 partition, stock "
            f"{plan.stock}, prewarmSeconds "
            f"{plan.prewarm_s}: {2 * plan.sales} sale processes in all, not 3 per sale as by default, so "
            "that the machine is not what is measured",
            "operator_schedule": f"first start {plan.lead_s:g} s after creation, then every "
            f"{plan.spacing_s:g} s",
            "operator_pause_cycles": plan.pause_cycles,
            "operator_scale_sale_shape": f"one more sale: queue shared with {scale.partitions} partitions, "
            f"consumers {scale.consumers}, gateway replicas 1, stock {scale.stock}; {scale.prime_buyers} "
            f"orders first (not timed), then {scale.runs} backlogs of {scale.buyers} orders each, the "
            "consumers held back on the ledger row until the scale-up, the other sales still there",
            "wall_seconds": round(seconds),
            # Named after the part: bench.merge puts every part's machine keys side by side.
            **{key if key.startswith("operator_") else f"operator_{key}": v for key, v in conditions.items()},
        },
        "figures": {name: figure.as_json() for name, figure in figures.items()},
    }


if __name__ == "__main__":
    sys.exit(main())
