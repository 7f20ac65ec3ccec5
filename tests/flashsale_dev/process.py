"""One local server process: started, watched for readiness, stopped, killed, started again.

Every process gets its own session (so a Ctrl-C in the terminal reaches the test runner, which then
stops things in order) and asks the kernel to SIGKILL it when its parent dies (PR_SET_PDEATHSIG),
so even a test run killed with SIGKILL leaves nothing behind. The parent is the *thread* that
spawned it: spawn from the main thread or from a thread that outlives the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class ComponentError(RuntimeError):
    """A component did not start or stop; the message carries the tail of its own log."""


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def alive(self) -> bool:
        return self.returncode is None and self._popen is not None

    @property
    def returncode(self) -> int | None:
        """Popen's: None while running (or never started), -N if killed by signal N."""
        return self._popen.poll() if self._popen is not None else None

    def start(self) -> None:
        if self.alive:
            raise ComponentError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                user=self.user,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - prctl must run in the child
            )

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop (the component's own shutdown), then SIGKILL for whatever is left."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._signal_leader(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout)
        self._kill_group()

    def terminate(self) -> None:
        """Send the graceful stop signal without waiting (the caller owns the grace period)."""
        if self.alive:
            self._signal_leader(self.stop_signal)

    def kill(self) -> None:
        """SIGKILL the process and everything it forked, as a crash would."""
        if self._popen is not None:
            self._kill_group()

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `ready` until true; fail fast with the log tail if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive:
                raise ComponentError(f"{self.name} exited before {what}:\n{self.log_tail()}")
            try:
                if ready():
                    return
            except Exception:  # noqa: S110 - not ready yet is any exception from the probe
                pass
            if time.monotonic() > deadline:
                raise ComponentError(f"{self.name}: no {what} after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(f"  | {line}" for line in text.splitlines()[-lines:])

    def _signal_leader(self, sig: signal.Signals) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._popen.pid, sig)

    def _kill_group(self) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        self._popen.wait()


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (an exited child nobody has reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line mentions `text` (e.g. a platform's state dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if text in cmdline and is_running(int(entry.name)):
            found.append(int(entry.name))
    return found
