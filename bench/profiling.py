"""Where the time goes when a goal is missed: py-spy samples the server while the load runs again.

py-spy attaches to a running process (and its worker subprocesses) without changing it. Its raw
output (one line per distinct stack, `frame;frame;... count`) is summarised into the functions that
hold the CPU themselves (self) and those under which it is spent (total).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"


def available() -> str | None:
    """The py-spy binary, if installed (the venv's first, then PATH)."""
    return str(PY_SPY) if PY_SPY.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def sampling(pid: int, seconds: float, raw_path: Path, rate: int = 200) -> Iterator[None]:
    """Samples `pid` and its subprocesses for `seconds` while the body runs the load."""
    binary = available()
    if binary is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    argv = [
        binary, "record",
        "--pid", str(pid),
        "--subprocesses",
        "--nonblocking",
        "--rate", str(rate),
        "--duration", str(max(1, int(seconds))),
        "--format", "raw",
        "--output", str(raw_path),
    ]  # fmt: skip
    with raw_path.with_suffix(".log").open("wb") as log:
        recorder = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield
            recorder.wait(timeout=seconds + 60)
        finally:
            if recorder.poll() is None:
                recorder.kill()
                recorder.wait()


def summarise(raw_path: Path, title: str, top: int = 25) -> str:
    """A plain-text report: samples by process, then by function (self and total), most first.

    Samples with no Python frame are threads in native code (granian's Rust runtime, librdkafka,
    the interpreter waiting in a C call); py-spy's non-blocking mode does not unwind those.
    """
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    processes: Counter[str] = Counter()
    total = 0
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if frame]
        process = ""
        while frames and frames[0].startswith("process "):  # py-spy nests a child under its parent
            process = frames.pop(0)
        if process:
            processes[process] += count
        frames = [_short(frame) for frame in frames] or ["(no Python frame: native code)"]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            under[frame] += count
    lines = [title, f"{total} samples of active threads (py-spy, idle excluded)", ""]
    sections = [("process", processes), ("self", own), ("total", under)] if processes else []
    for heading, counter in sections or [("self", own), ("total", under)]:
        lines.append(f"-- {heading}: % of samples")
        for frame, count in counter.most_common(top):
            lines.append(f"{100.0 * count / max(total, 1):6.1f}%  {frame}")
        lines.append("")
    return "\n".join(lines)


def _short(frame: str) -> str:
    """`func (/long/path/site-packages/pkg/mod.py:12)` -> `func (pkg/mod.py:12)`."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/services/", "/bench/", "/lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})" if where else name
