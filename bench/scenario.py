"""The data plane's benchmark, step by step, on one local platform.

1. Baselines (granian and uvicorn: a bare ASGI callable, a trivial FastAPI endpoint) and the naive
   design (granian, one PostgreSQL transaction per request) start, and each is warmed up.
2. One gateway process opens a sale whose stock outlasts every buy run; it is warmed up.
3. Rounds: every HTTP target once per round, so drift on a busy machine spreads over all figures;
   then the buy path once more under the profiler.
4. The gateway's sale is sold out; rounds of the ceiling and the sold-out path, then its profile.
5. The books are checked (no oversell, nothing lost), the gateway's RSS read, the servers stopped.
6. Consumer runs: N reservations waiting in a fresh topic, one consumer process, timed (profiled
   once more if it misses its goal).
Every HTTP figure uses the same connection count and duration.
"""

from __future__ import annotations

import math
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bench.consumer_rate import ConsumerBench
from bench.figures import Figure, Goal
from bench.load import Load, TokenFile
from bench.measure import Target
from bench.naive import check as naive_check
from bench.naive import prepare as naive_prepare
from bench.sale import BenchSale, migrate, new_sale_id
from bench.servers import Server, baseline
from flashsale_dev.platform import LocalPlatform
from flashsale_sale.contract import order_path

REPO: Final = Path(__file__).resolve().parent.parent
NAIVE_STOCK: Final = 10_000_000  # lasts: the naive design sells a few thousand per second at most
# The settings' upper bound: more than one process reserves in all its runs (a few million at most);
# the rest goes to one buyer when the sold-out path is measured.
GATE_STOCK: Final = 10_000_000
MIN_TOKENS: Final = 20_000


@dataclass(frozen=True)
class Plan:
    load: Load
    runs: int
    warmup_s: float
    consumer_orders: int
    consumer_runs: int
    naive_pool: int
    profile: bool = True


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class DataplaneScenario:
    def __init__(self, platform: LocalPlatform, plan: Plan, work: Path, profiles: Path) -> None:
        self.platform = platform
        self.plan = plan
        self.work = work
        self.profiles = profiles
        self.servers: list[Server] = []
        self.consumer: ConsumerBench | None = None
        self.figures: dict[str, Figure] = {}
        self.conditions: dict[str, Any] = {}
        self._files: dict[str, TokenFile] = {}
        self.token_counts: dict[str, int] = {}
        self._naive_sale = new_sale_id("naive")
        self._rss_at_start = 0.0

    # ---- the sequence ----

    def run(self) -> dict[str, Figure]:
        migrate(self.platform)
        baselines = self._start_baselines()
        for target in baselines:
            self._warm_up(target)
        sale = self._open_sale()
        buy_figure = self._figure("buy_rps", "requests/s", ">= 0.35")
        buy = Target(buy_figure, sale.server, sale.order_path, self._fresh_tokens(sale.user_key, "buy"))
        self._warm_up(buy)
        rounds = [*baselines, buy]
        before = sale.outcomes()
        for run in range(1, self.plan.runs + 1):
            for target in rounds:
                self._measure(target, run)
        buy.figure.details["gateway_outcomes"] = _delta(before, sale.outcomes())
        if self.plan.profile:  # while the stock lasts; kept in the results where a goal is missed
            say("profiling the buy path")
            buy.profile(self.plan.load, self.profiles)
        with self.platform.postgres.connect() as conn:
            self.figures["naive_rps"].details["books"] = naive_check(conn, self._naive_sale, NAIVE_STOCK)
        soldout = self._sold_out(sale, ceiling=next(t for t in baselines if t.figure.name == "ceiling_rps"))
        buy.figure.details["books"] = sale.check()
        buy.figure.details["orders_in_database"] = sale.orders_in_database()
        for target in [*rounds, soldout]:
            target.summarise()
        self._relate()
        if "profile" in buy.figure.details:  # naive_rps' goal is the buy path's speed: same profile
            self.figures["naive_rps"].details["profile"] = buy.figure.details["profile"]
        self._memory(sale)
        self.stop_servers()
        self._consumer_runs()
        return self.figures

    def _warm_up(self, target: Target) -> None:
        result = target.warm_up(self.plan.load, self.plan.warmup_s)
        say(f"warm-up {target.figure.name}: {result.rps:,.0f}/s")
        self._size_token_files(target.figure.name, result.rps)

    def _measure(self, target: Target, run: int) -> None:
        result = target.measure(self.plan.load, f"run{run}")
        say(f"run {run} {target.figure.name}: {target.figure.runs[-1]:,.0f}/s "
            f"(p50 {result.p50_ms:.1f} ms, non-2xx {result.non_2xx})")  # fmt: skip
        self._size_token_files(target.figure.name, result.rps)

    def _size_token_files(self, figure: str, rps: float) -> None:
        """New users for every request of a run, with room: sized on the fastest answers seen yet.

        The gateway and the naive design do more than the bare ceiling (the sold-out path about as
        little), so a file of 1.5x what the ceiling answered in one run's time does not run out.
        """
        enough = math.ceil(rps * self.plan.load.duration_s * 1.5)
        if figure == "ceiling_rps":
            for kind in ("buy", "soldout"):
                self.token_counts[kind] = max(self.token_counts.get(kind, MIN_TOKENS), enough)
        if figure == "naive_rps":
            self.token_counts["naive"] = max(self.token_counts.get("naive", MIN_TOKENS), 2 * enough)

    def _memory(self, sale: BenchSale) -> None:
        rss = Figure("gateway_rss_mb", "MB", [sale.server.rss_mb()], Goal("<", 150))
        rss.details.update({"measure": "RSS summed over the gateway's processes", **sale.server.memory()})
        rss.details["rss_mb_at_start"] = round(self._rss_at_start, 1)
        rss.details["reservations_made"] = self.figures["buy_rps"].details["books"]["reservations"]
        self.figures["gateway_rss_mb"] = rss

    def stop_servers(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()

    def stop(self) -> None:
        self.stop_servers()
        if self.consumer is not None:
            self.consumer.stop()

    # ---- steps ----

    def _start_baselines(self) -> list[Target]:
        key = secrets.token_urlsafe(32).encode()
        path = order_path(key, "bench-baseline")
        with self.platform.postgres.connect() as conn:
            naive_prepare(conn, self._naive_sale, NAIVE_STOCK)
        env = {**os.environ, "PYTHONPATH": _pythonpath()}
        naive_env = {
            **env,
            "BENCH_NAIVE_DATABASE_URL": self.platform.postgres.url(),
            "BENCH_NAIVE_SALE": self._naive_sale,
            "BENCH_NAIVE_TOKEN_KEY": key.decode(),
            "BENCH_NAIVE_POOL": str(self.plan.naive_pool),
        }
        plain = self._tokens("plain", key, "plain", 100_000)
        specs = [
            ("ceiling_rps", "granian", "bench.apps:ceiling", None, env),
            ("fastapi_trivial_rps", "granian", "bench.apps:fastapi_trivial", None, env),
            ("uvicorn_ceiling_rps", "uvicorn", "bench.apps:ceiling", None, env),
            ("uvicorn_fastapi_trivial_rps", "uvicorn", "bench.apps:fastapi_trivial", None, env),
            ("naive_rps", "granian", "bench.naive:app", ">= 10", naive_env),
        ]
        targets = []
        for name, server_kind, app, goal, server_env in specs:
            port = self.platform.reserve_port()
            server = baseline(name, server_kind, app, port, log_dir=self.work, env=server_env)
            server.probe_path = path
            server.process.cwd = REPO
            self.servers.append(server)
            server.start()
            figure = self._figure(name, "requests/s", goal)
            figure.details.update({"server": server_kind, "app": app})
            if name == "naive_rps":
                naive_tokens = self._fresh_tokens(key, "naive")
                targets.append(Target(figure, server, path, naive_tokens))
            else:
                targets.append(Target(figure, server, path, _always(plain)))
        self.conditions["naive_pool_connections"] = self.plan.naive_pool
        return targets

    def _open_sale(self) -> BenchSale:
        stock = GATE_STOCK
        sale = BenchSale(self.platform, stock, self.work)
        self.servers.append(sale.server)
        say(f"gateway: opening a sale of {stock:,} units")
        sale.open()
        self._rss_at_start = sale.server.rss_mb()
        self.conditions.update({"gateway_stock": stock, "consumer_during_buy": False})
        return sale

    def _sold_out(self, sale: BenchSale, ceiling: Target) -> Target:
        """The same gateway once sold out, in rounds with the ceiling again (its baseline, measured
        under the same conditions; the ceiling's figure is the median over both phases)."""
        taken = sale.sell_out()
        say(f"sold out ({taken:,} units went to one buyer through the reserve script)")
        soldout = Target(self._figure("soldout_rps", "requests/s", ">= 0.85"), sale.server, sale.order_path,
                         self._fresh_tokens(sale.user_key, "soldout"), expect_2xx=False)  # fmt: skip
        self._warm_up(soldout)
        before = sale.outcomes()
        for run in range(1, self.plan.runs + 1):
            self._measure(ceiling, self.plan.runs + run)
            self._measure(soldout, run)
        soldout.figure.details["gateway_outcomes"] = _delta(before, sale.outcomes())
        if self.plan.profile:
            say("profiling the sold-out path")
            soldout.profile(self.plan.load, self.profiles)
        return soldout

    def _consumer_runs(self) -> None:
        figure = self._figure("consumer_orders_per_s", "orders/s", ">= 10000")
        timeout = 120.0 + self.plan.consumer_orders / 500.0
        warm = ConsumerBench(self.platform, max(5_000, self.plan.consumer_orders // 10), self.work)
        self.consumer = warm
        warm.prepare()  # the first consumer of a platform meets cold caches and a young table
        say(f"warm-up consumer_orders_per_s: {warm.run(timeout).per_s:,.0f}/s")
        self.consumer = bench = ConsumerBench(self.platform, self.plan.consumer_orders, self.work)
        steady: list[float] = []
        for run in range(1, self.plan.consumer_runs + 1):
            bench.prepare()
            result = bench.run(timeout)
            figure.runs.append(result.per_s)
            steady.append(result.steady_per_s)
            figure.details.setdefault("books", []).append(result.checks)
            say(f"run {run} consumer_orders_per_s: {result.per_s:,.0f}/s ({result.orders:,} orders in "
                f"{result.seconds:.1f} s; steady {result.steady_per_s:,.0f}/s)")  # fmt: skip
        figure.details["orders_per_run"] = self.plan.consumer_orders
        figure.details["steady_orders_per_s"] = round(sorted(steady)[len(steady) // 2])
        if self.plan.profile and figure.met is False:
            say("consumer missed its goal: profiling a run")
            seconds = max(3.0, self.plan.consumer_orders / max(figure.value, 1.0))
            figure.details["profile"] = bench.profile(seconds, self.profiles)

    # ---- helpers ----

    def _relate(self) -> None:
        f = self.figures
        f["fastapi_trivial_rps"].relate(f["ceiling_rps"])
        f["uvicorn_ceiling_rps"].relate(f["ceiling_rps"])
        f["uvicorn_fastapi_trivial_rps"].relate(f["fastapi_trivial_rps"])
        f["buy_rps"].relate(f["ceiling_rps"])
        f["naive_rps"].relate(f["buy_rps"], inverse=True)  # the goal: buy_rps / naive_rps >= 10
        f["soldout_rps"].relate(f["ceiling_rps"])

    def _figure(self, name: str, unit: str, goal: str | None) -> Figure:
        parsed = None if goal is None else Goal(goal.split()[0], float(goal.split()[1]))
        figure = Figure(name, unit, goal=parsed)
        self.figures[name] = figure
        return figure

    def _tokens(self, label: str, key: bytes, prefix: str, count: int) -> TokenFile:
        if label not in self._files:
            self._files[label] = TokenFile.mint(self.work / f"tokens-{label}.txt", key, prefix, count)
        return self._files[label]

    def _fresh_tokens(self, key: bytes, kind: str) -> Callable[[str], TokenFile]:
        """A token supply handing out new users for every label (run) it is asked for.

        A file holds `self.token_counts[kind]` tokens, sized by `_size_token_files` as runs go.
        """
        self.token_counts.setdefault(kind, MIN_TOKENS)

        def supply(label: str) -> TokenFile:
            previous = [name for name in self._files if name.startswith(f"{kind}-")]
            for name in previous:  # one run's file at a time on disk
                self._files.pop(name).path.unlink(missing_ok=True)
            return self._tokens(f"{kind}-{label}", key, f"{kind}{label}", self.token_counts[kind])

        return supply


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Answers by outcome during the runs, as the gateway counted them (wrk sees only 2xx or not)."""
    return {k: after[k] - before.get(k, 0) for k in sorted(after) if after[k] != before.get(k, 0)}


def _always(tokens: TokenFile) -> Callable[[str], TokenFile]:
    """The baselines ignore the token: one file serves every run (repeat users do not matter)."""
    return lambda _label: tokens


def _pythonpath() -> str:
    existing = os.environ.get("PYTHONPATH")
    return f"{REPO}:{existing}" if existing else str(REPO)
