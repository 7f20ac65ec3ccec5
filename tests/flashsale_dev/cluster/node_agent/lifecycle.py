"""A container's life as the kubelet decides it (pure): restart or not, how long to back off, and the
API's shapes for its states."""

from __future__ import annotations

import time
from typing import Any

BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 30.0
# The kubelet forgets a container's crash history once it has run for twice the longest back-off.
BACKOFF_RESET_AFTER = 2 * BACKOFF_MAX
START_ERROR_EXIT_CODE = 128  # what the kubelet reports when the runtime could not start the command


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def should_restart(restart_policy: str, exit_code: int, *, killed_by_probe: bool = False) -> bool:
    """Always restarts; OnFailure restarts failures and probe kills; Never never does."""
    if restart_policy == "Never":
        return False
    if restart_policy == "OnFailure":
        return killed_by_probe or exit_code != 0
    return True


def backoff_delay(crashes: int) -> float:
    """1 s after the first exit, doubling up to 30 s."""
    return float(min(BACKOFF_MAX, BACKOFF_INITIAL * 2 ** max(0, crashes - 1)))


def exit_code_of(returncode: int) -> int:
    """Popen's -N for "killed by signal N" is 128+N in a container's status, as a shell reports it."""
    return 128 - returncode if returncode < 0 else returncode


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    return {"waiting": state}


def running(started_at: float) -> dict[str, Any]:
    return {"running": {"startedAt": rfc3339(started_at)}}


def terminated(
    exit_code: int,
    started_at: float | None,
    finished_at: float,
    container_id: str,
    *,
    reason: str | None = None,
    message: str = "",
) -> dict[str, Any]:
    state: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "finishedAt": rfc3339(finished_at),
    }
    if started_at is not None:
        state["startedAt"] = rfc3339(started_at)
    if container_id:
        state["containerID"] = container_id
    if message:
        state["message"] = message
    return {"terminated": state}


def crash_loop_message(delay: float, container: str, namespace: str, pod: str, uid: str) -> str:
    return f"back-off {delay:g}s restarting failed container={container} pod={pod}_{namespace}({uid})"
