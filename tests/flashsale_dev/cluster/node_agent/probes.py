"""Probes as the kubelet runs them: httpGet, tcpSocket and exec against the pod's own address.

`parse_probe` and `ProbeTracker` are pure (the spec's defaults and the thresholds' arithmetic);
`run_probe` does the I/O and runs in a worker thread so a slow probe never stalls the agent.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SUPPORTED = ("httpGet", "tcpSocket", "exec")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProbeSpec:
    kind: str  # one of SUPPORTED, or the unsupported handler's name (it then always fails)
    action: Mapping[str, Any]
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


def parse_probe(probe: Mapping[str, Any] | None) -> ProbeSpec | None:
    """The probe with the API's defaults filled in; None when the container has none."""
    if not probe:
        return None
    handlers = [k for k in probe if k in (*SUPPORTED, "grpc")]
    kind = handlers[0] if handlers else "none"
    return ProbeSpec(
        kind=kind,
        action=probe.get(kind) or {},
        initial_delay=float(probe.get("initialDelaySeconds") or 0),
        period=float(max(1, probe.get("periodSeconds") or 10)),
        timeout=float(max(1, probe.get("timeoutSeconds") or 1)),
        success_threshold=int(max(1, probe.get("successThreshold") or 1)),
        failure_threshold=int(max(1, probe.get("failureThreshold") or 3)),
    )


def resolve_port(port: int | str, container: Mapping[str, Any]) -> int:
    """A port number, or the number of the container's port with that name."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"no container port named {port!r}")


@dataclass
class ProbeTracker:
    """Consecutive results against the thresholds; `ok` flips only when a threshold is reached."""

    spec: ProbeSpec
    ok: bool  # the result before the first probe: not ready, but alive
    next_due: float = 0.0
    successes: int = 0
    failures: int = 0
    last_message: str = field(default="")

    def schedule_from(self, started: float) -> None:
        self.next_due = started + self.spec.initial_delay

    def due(self, now: float) -> bool:
        return now >= self.next_due

    def record(self, success: bool, message: str, now: float) -> bool:
        """Count one result, schedule the next; returns the (possibly new) overall result."""
        self.next_due = now + self.spec.period
        self.last_message = message
        if success:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= self.spec.success_threshold:
                self.ok = True
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failures >= self.spec.failure_threshold:
                self.ok = False
        return self.ok


def run_probe(
    spec: ProbeSpec,
    container: Mapping[str, Any],
    pod_ip: str,
    env: Mapping[str, str],
    cwd: Path,
    *,
    enter: Sequence[str] = (),
) -> tuple[bool, str]:
    """One probe attempt: (success, what happened); `enter` prefixes an exec probe's command."""
    try:
        if spec.kind == "httpGet":
            return _http(spec, container, pod_ip)
        if spec.kind == "tcpSocket":
            port = resolve_port(spec.action.get("port", 0), container)
            with socket.create_connection((spec.action.get("host") or pod_ip, port), timeout=spec.timeout):
                return True, f"tcp {port} open"
        if spec.kind == "exec":
            return _exec(spec.action.get("command") or [], env, cwd, spec.timeout, enter)
    except Exception as error:  # whatever goes wrong, the probe failed: never the agent
        return False, f"{spec.kind} probe failed: {error!r}"
    return False, f"{spec.kind} probes are not supported by the node agent"


def _http(spec: ProbeSpec, container: Mapping[str, Any], pod_ip: str) -> tuple[bool, str]:
    action = spec.action
    port = resolve_port(action.get("port", 0), container)
    scheme = str(action.get("scheme") or "HTTP").lower()
    path = action.get("path") or "/"
    url = f"{scheme}://{action.get('host') or pod_ip}:{port}{path if path.startswith('/') else '/' + path}"
    headers = {h["name"]: h["value"] for h in action.get("httpHeaders") or []}
    # Like the kubelet: no certificate check, redirects not followed, 2xx and 3xx are a success.
    answer = httpx.get(url, headers=headers, timeout=spec.timeout, verify=False)  # noqa: S501
    return 200 <= answer.status_code < 400, f"GET {url}: {answer.status_code}"


def _die_with_agent() -> None:
    """PR_SET_PDEATHSIG, as process.py does: an exec probe must not outlive a killed agent."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _exec(
    command: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float, enter: Sequence[str] = ()
) -> tuple[bool, str]:
    if not command:
        return False, "exec probe without a command"
    with subprocess.Popen(
        [*enter, *command],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so that a timeout kills what the command started, too
        preexec_fn=_die_with_agent,  # noqa: PLW1509 - prctl must run in the child
    ) as probe:
        try:
            output, _ = probe.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(probe.pid, signal.SIGKILL)
            probe.communicate()
            return False, f"exec {command[0]}: timed out after {timeout:g}s"
    text = output.decode(errors="replace").strip()[-200:]
    return probe.returncode == 0, f"exec {command[0]}: exit {probe.returncode} {text}".strip()
