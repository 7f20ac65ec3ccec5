"""What the figures were measured on: CPU, memory, kernel, Python, and every server's version."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import confluent_kafka

from bench.load import wrk_version
from flashsale_dev.paths import POSTGRES_BIN, versions

_PACKAGES = (
    "granian", "uvicorn", "uvloop", "httptools", "fastapi", "starlette", "pydantic",
    "redis", "confluent-kafka", "psycopg",
)  # fmt: skip


def describe() -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(_mem_total_kb() / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {
            **{name: _package_version(name) for name in _PACKAGES},
            "librdkafka": confluent_kafka.libversion()[0],
            "redis-server": _first_line(["/usr/bin/redis-server", "--version"]),
            "postgresql": _first_line([str(POSTGRES_BIN / "postgres"), "--version"]),
            "kafka": versions().get("KAFKA_VERSION", "?"),
            "wrk": wrk_version(),
        },
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _mem_total_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    except OSError:
        return "?"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"
