"""Measuring one HTTP target: warm-up, runs with wrk, and the profile of a run when a goal is missed.

A `Target` is a server plus what to send it (path, token supply) and what counts (2xx answers for
the paths that must succeed, every answer for the sold-out path whose answer is a 410).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import profiling
from bench.figures import Figure
from bench.load import Load, TokenFile, WrkResult, run_wrk
from bench.servers import Server, settle


@dataclass
class Target:
    figure: Figure
    server: Server
    path: str
    tokens: Callable[[str], TokenFile]  # label -> a token file (fresh users where that matters)
    expect_2xx: bool = True  # False: every answer should be a non-2xx (the sold-out 410)
    results: list[WrkResult] = field(default_factory=list)

    def warm_up(self, load: Load, seconds: float) -> WrkResult:
        return run_wrk(self.server.base_url, self.path, self.tokens("warm"), load, duration_s=seconds)

    def measure(self, load: Load, label: str) -> WrkResult:
        result = run_wrk(self.server.base_url, self.path, self.tokens(label), load)
        self.results.append(result)
        counted = result.ok_2xx if self.expect_2xx else result.requests
        self.figure.runs.append(counted / result.duration_s if result.duration_s else 0.0)
        settle()
        return result

    def summarise(self) -> None:
        """Latency medians and anything unexpected, into the figure's details."""
        if not self.results:
            return
        unexpected = sum(r.non_2xx if self.expect_2xx else r.ok_2xx for r in self.results)
        self.figure.details.update(
            {
                "p50_ms": round(statistics.median(r.p50_ms for r in self.results), 2),
                "p99_ms": round(statistics.median(r.p99_ms for r in self.results), 2),
                "unexpected_answers": unexpected,
                "socket_errors": sum(r.socket_errors + r.timeouts for r in self.results),
            }
        )
        wrapped = sum(r.tokens_wrapped for r in self.results)
        if wrapped and self.figure.name in {"buy_rps", "soldout_rps", "naive_rps"}:
            self.figure.details["tokens_wrapped"] = wrapped  # some users came twice: not all new

    def profile(self, load: Load, profiles_dir: Path) -> Path | None:
        """One more run under py-spy; the summary lands in `profiles_dir`/<figure>.txt."""
        pid = self.server.process.pid
        if pid is None or profiling.available() is None:
            self.figure.details["profile"] = "not taken: py-spy is not installed"
            return None
        profiles_dir.mkdir(parents=True, exist_ok=True)
        raw = profiles_dir / f"{self.figure.name}.raw"
        with profiling.sampling(pid, load.duration_s, raw):
            result = run_wrk(self.server.base_url, self.path, self.tokens("profile"), load)
        title = (
            f"{self.figure.name}: {self.server.name} under wrk -t{load.threads} -c{load.connections}"
            f" -d{load.duration_s:g}s ({result.rps:,.0f} requests/s while sampled)"
        )
        report = profiles_dir / f"{self.figure.name}.txt"
        if not raw.exists():
            log = raw.with_suffix(".log")
            self.figure.details["profile"] = f"failed: {log.read_text(errors='replace').strip()[-300:]}"
            return None
        report.write_text(profiling.summarise(raw, title))
        raw.unlink(missing_ok=True)
        raw.with_suffix(".log").unlink(missing_ok=True)
        self.figure.details["profile"] = report.name
        return report
