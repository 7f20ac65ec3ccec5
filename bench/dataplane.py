"""`make bench-dataplane`: the sale's data plane measured side by side in one run (issue 7).

    python -m bench.dataplane [--quick] [--connections N] [--duration S] [--runs R] [--out FILE]

Starts its own local platform (Redis, PostgreSQL, Kafka, Prometheus; no cluster), runs every
figure (bench/scenario.py), stops everything it started - also on Ctrl-C, on SIGTERM and when the
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
from bench.load import Load
from bench.runs import BudgetExceeded, install_signals, print_table
from bench.scenario import DataplaneScenario, Plan, say
from flashsale_dev.platform import LocalPlatform

PART = "dataplane"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = _plan(args)
    out = Path(args.out)
    profiles = out.parent / "profiles"
    shutil.rmtree(profiles, ignore_errors=True)
    install_signals(args.budget)
    work = Path(tempfile.mkdtemp(prefix="flashsale-bench-"))
    work.chmod(0o755)  # the postgres user reaches its data directory through it
    platform = LocalPlatform(work / "platform")
    scenario = DataplaneScenario(platform, plan, work, profiles)
    started = time.monotonic()
    try:
        say(f"platform starting in {work}")
        platform.start()
        figures = scenario.run()
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
    part = _part(plan, scenario.conditions, figures, time.monotonic() - started, args.quick)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(part, indent=2) + "\n")
    print_table(figures)
    say(f"wrote {out} in {time.monotonic() - started:.0f} s")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.dataplane", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs for development (noisy figures)")
    parser.add_argument("--connections", type=int, default=256, help="wrk connections (every HTTP figure)")
    parser.add_argument("--duration", type=float, help="seconds per run (default 10, quick 3)")
    parser.add_argument(
        "--runs", type=int, help="runs per figure, the median is reported (default 3, quick 1)"
    )
    parser.add_argument("--warmup", type=float, help="warm-up seconds per target (default 3, quick 1)")
    parser.add_argument("--consumer-orders", type=int, help="orders per consumer run (default 200000)")
    parser.add_argument("--naive-pool", type=int, default=16, help="PostgreSQL connections of the naive app")
    parser.add_argument("--no-profile", action="store_true", help="do not profile a missed goal")
    parser.add_argument("--budget", type=float, help="stop everything after this many seconds")
    parser.add_argument("--out", default="bench/out/dataplane.json", help="this part's figures (JSON)")
    return parser


def _plan(args: argparse.Namespace) -> Plan:
    quick = bool(args.quick)
    runs = args.runs or (1 if quick else 3)
    plan = Plan(
        load=Load(connections=args.connections, duration_s=args.duration or (3.0 if quick else 10.0)),
        runs=runs,
        warmup_s=args.warmup or (1.0 if quick else 3.0),
        consumer_orders=args.consumer_orders or (20_000 if quick else 200_000),
        consumer_runs=runs,
        naive_pool=args.naive_pool,
        profile=not args.no_profile,
    )
    if args.budget is None:  # generous: platform start, every run, profiles, consumers, cleanup
        http = 8 * (plan.runs + 2) * (plan.load.duration_s + 5) + 6 * (plan.warmup_s + 5)
        args.budget = 300 + http + (plan.runs + 1) * (60 + plan.consumer_orders / 1000)
    return plan


def _part(
    plan: Plan, conditions: dict[str, Any], figures: dict[str, Figure], seconds: float, quick: bool
) -> dict[str, Any]:
    return {
        "part": PART,
        "machine": {
            **machine.describe(),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": quick,
            "load_generator": f"wrk -t{plan.load.threads} -c{plan.load.connections} "
            f"-d{plan.load.duration_s:g}s, a fresh pre-minted token per request",
            "connections": plan.load.connections,
            "duration_s": plan.load.duration_s,
            "warmup_s": plan.warmup_s,
            "runs": plan.runs,
            "postgres": "local platform settings: fsync=off, full_page_writes=off, synchronous_commit=on",
            "wall_seconds": round(seconds),
            **conditions,
        },
        "figures": {name: figure.as_json() for name, figure in figures.items()},
    }


if __name__ == "__main__":
    sys.exit(main())
