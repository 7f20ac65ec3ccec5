"""The load generator: wrk, one thread, a fixed number of connections, a fresh token per request.

Tokens are minted in bulk before a run (`TokenFile.mint`) and wrk's Lua script (bench/wrk/tokens.lua)
sends the next one with every request, so every request is a new simulated user. A run that needs
more tokens than its file holds repeats users and reports it (`tokens_wrapped`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from flashsale_sale import tokens

LUA_SCRIPT: Final = Path(__file__).parent / "wrk" / "tokens.lua"
MARKER: Final = "BENCH "


@dataclass(frozen=True)
class Load:
    """How hard and how long: the same for every HTTP figure of a run."""

    connections: int
    duration_s: float
    threads: int = 1
    timeout_s: float = 10.0


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    non_2xx: int
    socket_errors: int
    timeouts: int
    p50_ms: float
    p99_ms: float
    tokens_wrapped: int

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def ok_2xx(self) -> int:
        return self.requests - self.non_2xx


@dataclass(frozen=True)
class TokenFile:
    path: Path
    count: int

    @classmethod
    def mint(cls, path: Path, key: bytes, prefix: str, count: int) -> TokenFile:
        """`count` tokens of the users `<prefix>-0` ... (distinct prefixes: distinct users)."""
        minted = tokens.mint_many(key, (f"{prefix}-{i}" for i in range(count)))
        path.write_text("\n".join(minted) + "\n")
        return cls(path, count)


def wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False, timeout=10)
    return (done.stdout + done.stderr).splitlines()[0].strip() if (done.stdout + done.stderr) else "?"


def run_wrk(
    url: str, path: str, token_file: TokenFile, load: Load, duration_s: float | None = None
) -> WrkResult:
    """One wrk run against `url` + `path`; raises if wrk fails or prints no report."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: run `make setup-system`")
    seconds = duration_s if duration_s is not None else load.duration_s
    argv = [
        "wrk",
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{seconds:g}s",
        f"--timeout={load.timeout_s:g}s",
        "-s", str(LUA_SCRIPT),
        url,
        "--", str(token_file.path), path,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 120)
    report = next((line for line in done.stdout.splitlines() if line.startswith(MARKER)), None)
    if done.returncode != 0 or report is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return _parse(json.loads(report[len(MARKER) :]))


def _parse(raw: dict[str, Any]) -> WrkResult:
    return WrkResult(
        requests=int(raw["requests"]),
        duration_s=int(raw["duration_us"]) / 1e6,
        non_2xx=int(raw["status_errors"]),
        socket_errors=int(raw["connect_errors"]) + int(raw["read_errors"]) + int(raw["write_errors"]),
        timeouts=int(raw["timeouts"]),
        p50_ms=int(raw["p50_us"]) / 1000.0,
        p99_ms=int(raw["p99_us"]) / 1000.0,
        tokens_wrapped=int(raw["tokens_wrapped"]),
    )
