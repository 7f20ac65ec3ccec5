"""One container of a project image, run as a local process: start, probes, exit, back-off, stop.

Everything here happens on the agent's main loop thread (see agent.py), the only thread that spawns
processes: PR_SET_PDEATHSIG ties each process to that thread, so they all die with the agent.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flashsale_dev.cluster.node_agent import lifecycle
from flashsale_dev.cluster.node_agent.envvars import EnvError
from flashsale_dev.cluster.node_agent.probes import ProbeTracker, parse_probe, run_probe
from flashsale_dev.process import ManagedProcess

log = logging.getLogger(__name__)

NSENTER = shutil.which("nsenter") or "nsenter"  # util-linux
CONFIG_RETRY = 2.0  # seconds between attempts to resolve a missing Secret/ConfigMap reference


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str
    restart_policy: str = "Always"
    pod_ip: str = ""
    grace: float = 30.0  # terminationGracePeriodSeconds, capped


class ProcessContainer:
    def __init__(
        self,
        spec: Mapping[str, Any],
        pod: PodRef,
        plan: Callable[[], Launch],
        probe_pool: Executor,
        *,
        restart_count: int = 0,
        previously_started: bool = False,
    ) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.image: str = spec.get("image", "")
        self.pod = pod
        self._plan = plan
        self._pool = probe_pool
        self.restart_count = restart_count
        self.state: dict[str, Any] = lifecycle.waiting("ContainerCreating")
        self.last_state: dict[str, Any] = {}
        self.ready = False
        self.started = False
        self.finished = False  # exited and will not be restarted
        self.process: ManagedProcess | None = None
        self.container_id = ""
        self._launch: Launch | None = None
        self._started_at = 0.0  # wall clock, for the status
        self._started_mono = 0.0
        self._next_start = 0.0  # monotonic: first start at once, later after the back-off
        self._crashes = 0
        self._ever_started = previously_started  # by an earlier run of the agent: this is a restart
        self._probes: dict[str, ProbeTracker] = {}
        self._pending: dict[str, Future[tuple[bool, str]]] = {}
        self._stop_deadline: float | None = None
        self._killed_by_probe = False

    def tick(self, now: float) -> None:
        if self.finished:
            return
        if self.process is not None and self.process.returncode is not None:
            self._exited(now, lifecycle.exit_code_of(self.process.returncode))
        elif self.process is not None:
            if self._stop_deadline is not None:
                if now >= self._stop_deadline:
                    self.process.kill()
            else:
                self._run_probes(now)
        elif now >= self._next_start:
            self._start(now)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": f"flashsale-local://{self.image}",
            "state": self.state,
            "lastState": self.last_state,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.started,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status

    def begin_stop(self, now: float, grace: float) -> None:
        """SIGTERM now; `stopped` SIGKILLs whatever is left once `grace` has passed."""
        self.finished = True
        self._terminate(now, grace)

    def stopped(self, now: float) -> bool:
        if self.process is None or not self.process.alive:
            self.kill()  # the group's leftovers, and the reaping
            return True
        if self._stop_deadline is None or now >= self._stop_deadline:
            self.kill()
            return True
        return False

    def kill(self) -> None:
        self.finished = True
        if self.process is not None:
            self.process.kill()

    def _start(self, now: float) -> None:
        try:
            self._launch = self._plan()
        except EnvError as error:
            self.state = lifecycle.waiting("CreateContainerConfigError", str(error))
            self._next_start = now + CONFIG_RETRY
            return
        except Exception as error:  # a bug of ours, shown where the pod's owner looks first
            log.exception(
                "%s/%s/%s: cannot prepare the process", self.pod.namespace, self.pod.name, self.name
            )
            self.state = lifecycle.waiting("CreateContainerError", repr(error))
            self._next_start = now + CONFIG_RETRY
            return
        if self._ever_started:
            self.restart_count += 1
        self._ever_started = True
        launch = self._launch
        self.process = ManagedProcess(self.name, launch.argv, launch.log_path, env=launch.env, cwd=launch.cwd)
        self._started_at, self._started_mono = time.time(), now
        try:
            self.process.start()
        except OSError as error:  # the command itself is missing or not executable
            self.process = None
            self.container_id = ""
            self._after_exit(now, lifecycle.START_ERROR_EXIT_CODE, "StartError", str(error))
            return
        self.container_id = f"flashsale-local://{self.process.pid}"
        self.state = lifecycle.running(self._started_at)
        self._stop_deadline = None
        self._killed_by_probe = False
        self._pending.clear()  # results of the previous run's probes no longer count
        self._probes = {}
        for kind, initial in (("startupProbe", False), ("livenessProbe", True), ("readinessProbe", False)):
            spec = parse_probe(self.spec.get(kind))
            if spec is not None:
                self._probes[kind] = ProbeTracker(spec, ok=initial)
                self._probes[kind].schedule_from(now)
        self.started = "startupProbe" not in self._probes
        self.ready = self.started and "readinessProbe" not in self._probes

    def _exited(self, now: float, exit_code: int) -> None:
        assert self.process is not None
        self.process.kill()  # the process group's leftovers, and the reaping
        self.process = None
        self._after_exit(now, exit_code, None, "")

    def _after_exit(self, now: float, exit_code: int, reason: str | None, message: str) -> None:
        term = lifecycle.terminated(
            exit_code, self._started_at, time.time(), self.container_id, reason=reason, message=message
        )
        self.ready = self.started = False
        self._pending.clear()
        restart = not self.finished and lifecycle.should_restart(
            self.pod.restart_policy, exit_code, killed_by_probe=self._killed_by_probe
        )
        if not restart:
            self.finished = True
            self.state = term
            return
        if now - self._started_mono >= lifecycle.BACKOFF_RESET_AFTER:
            self._crashes = 0
        self._crashes += 1
        delay = lifecycle.backoff_delay(self._crashes)
        self.last_state = term
        self.state = lifecycle.waiting(
            "CrashLoopBackOff",
            lifecycle.crash_loop_message(delay, self.name, self.pod.namespace, self.pod.name, self.pod.uid),
        )
        self._next_start = now + delay

    def _run_probes(self, now: float) -> None:
        assert self._launch is not None
        for kind, tracker in self._probes.items():
            if kind != "startupProbe" and not self.started:
                continue  # liveness and readiness wait for the startup probe, as in the kubelet
            if kind == "startupProbe" and self.started:
                continue
            pending = self._pending.get(kind)
            if pending is not None and pending.done():
                del self._pending[kind]
                ok, message = pending.result()
                self._probe_result(kind, tracker, tracker.record(ok, message, now), now)
            elif pending is None and tracker.due(now):
                assert self.process is not None
                # An exec probe runs where the container's process runs: its mount namespace and root.
                enter = [NSENTER, f"--target={self.process.pid}", "--mount", "--root", "--wd", "--"]
                self._pending[kind] = self._pool.submit(
                    run_probe, tracker.spec, self.spec, self.pod.pod_ip, self._launch.env, self._launch.cwd,
                    enter=enter,
                )  # fmt: skip

    def _probe_result(self, kind: str, tracker: ProbeTracker, ok: bool, now: float) -> None:
        if kind == "readinessProbe":
            self.ready = ok
        elif kind == "startupProbe" and ok:
            self.started = True
            self.ready = "readinessProbe" not in self._probes
            for other in ("livenessProbe", "readinessProbe"):
                if other in self._probes:
                    self._probes[other].schedule_from(now)
        elif not ok and tracker.failures >= tracker.spec.failure_threshold:
            # A failed liveness (or startup) probe: stop the container, then restart per policy.
            self._killed_by_probe = True
            self.ready = False
            log.info("%s/%s/%s: %s failed, stopping it: %s", self.pod.namespace, self.pod.name, self.name,
                     kind, tracker.last_message)  # fmt: skip
            grace = self.spec.get(kind, {}).get("terminationGracePeriodSeconds")
            self._terminate(now, min(float(grace), 30.0) if grace is not None else self.pod.grace)

    def _terminate(self, now: float, grace: float) -> None:
        if self.process is not None and self.process.alive:
            self.process.terminate()  # if it exited just now, the next tick sees it
            self._stop_deadline = now + grace
