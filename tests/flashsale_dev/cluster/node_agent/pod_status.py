"""A pod's status as the kubelet reports it (pure): phase, conditions, addresses, container statuses.

Conditions are sent as a strategic-merge patch keyed by type, so those owned by others (PodScheduled,
readiness gates, DisruptionTarget) are left alone; a condition keeps its lastTransitionTime until its
status changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flashsale_dev.cluster.node_agent.lifecycle import rfc3339, waiting

HOST_IP = "127.0.0.1"
OWNED_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")


def pod_phase(statuses: Sequence[Mapping[str, Any]], restart_policy: str) -> str:
    """The kubelet's getPhase once the init containers are done (sidecars do not count)."""
    running = waiting = stopped = succeeded = 0
    for status in statuses:
        state = status.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode") == 0
        elif (status.get("lastState") or {}).get("terminated"):
            stopped += 1  # waiting to be restarted after an exit
        else:
            waiting += 1
    if waiting or not statuses:
        return "Pending"
    if running:
        return "Running"
    if restart_policy == "Always" or (restart_policy == "OnFailure" and stopped != succeeded):
        return "Running"  # containers that will be restarted
    return "Succeeded" if stopped == succeeded else "Failed"


def _condition(
    kind: str,
    ok: bool,
    previous: Mapping[str, Mapping[str, Any]],
    now: float,
    *,
    reason: str = "",
    message: str = "",
) -> dict[str, Any]:
    status = "True" if ok else "False"
    before = previous.get(kind) or {}
    unchanged = before.get("status") == status and before.get("lastTransitionTime")
    # None deletes a field in a strategic-merge patch: a True condition drops the False one's reason.
    return {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": before["lastTransitionTime"] if unchanged else rfc3339(now),
        "reason": (reason or None) if not ok else None,
        "message": (message or None) if not ok else None,
    }


@dataclass(frozen=True)
class ContainerStatuses:
    """A pod's container statuses, and where its init containers stand."""

    main: Sequence[Mapping[str, Any]]
    init: Sequence[Mapping[str, Any]] = ()
    sidecars: frozenset[str] = frozenset()  # init containers with restartPolicy Always: they keep running
    incomplete_init: Sequence[str] = ()  # init containers still to complete, in order
    init_failed: bool = False  # an init container failed and will not be retried

    @property
    def for_readiness(self) -> list[Mapping[str, Any]]:
        return [*(s for s in self.init if s["name"] in self.sidecars), *self.main]


def initializing(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A main container's status while the init containers run."""
    return {
        "name": spec["name"],
        "image": spec.get("image", ""),
        "imageID": "",
        "state": waiting("PodInitializing"),
        "lastState": {},
        "ready": False,
        "restartCount": 0,
        "started": False,
    }


def pod_conditions(
    pod: Mapping[str, Any],
    containers: ContainerStatuses,
    phase: str,
    now: float,
    sent: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Ours, from the container statuses; `sent` (what we last sent) outranks a stale pod object."""
    existing = [*((pod.get("status") or {}).get("conditions") or []), *sent]
    previous = {c.get("type", ""): c for c in existing}
    unready = [s["name"] for s in containers.for_readiness if not s.get("ready")]
    done = phase in ("Succeeded", "Failed")
    containers_ready = not unready and not done
    gates = [g.get("conditionType", "") for g in (pod.get("spec") or {}).get("readinessGates") or []]
    closed_gates = [g for g in gates if (previous.get(g) or {}).get("status") != "True"]
    if done:
        reason, message = "PodCompleted", ""
    else:
        reason, message = "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]"
    if containers_ready and closed_gates:
        ready_reason = "ReadinessGatesNotReady"
        ready_message = f"corresponding condition of pod readiness gate {closed_gates} does not exist."
    else:
        ready_reason, ready_message = reason, message
    incomplete = f"containers with incomplete status: [{' '.join(containers.incomplete_init)}]"
    return [
        _condition("PodReadyToStartContainers", not done, previous, now),
        _condition(
            "Initialized",
            not containers.incomplete_init,
            previous,
            now,
            reason="ContainersNotInitialized",
            message=incomplete,
        ),
        _condition("ContainersReady", containers_ready, previous, now, reason=reason, message=message),
        _condition(
            "Ready",
            containers_ready and not closed_gates,
            previous,
            now,
            reason=ready_reason,
            message=ready_message,
        ),
    ]


def render_pod_status(
    pod: Mapping[str, Any],
    containers: ContainerStatuses,
    *,
    pod_ip: str,
    start_time: float,
    now: float,
    sent: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The status fields the node agent owns, ready to be sent as a strategic-merge patch."""
    if containers.init_failed:
        phase = "Failed"  # only with restartPolicy Never: other policies retry the init container
    elif containers.incomplete_init:
        phase = "Pending"
    else:
        phase = pod_phase(containers.main, (pod.get("spec") or {}).get("restartPolicy") or "Always")
    status = {
        "phase": phase,
        "conditions": pod_conditions(pod, containers, phase, now, (sent or {}).get("conditions") or ()),
        "hostIP": HOST_IP,
        "hostIPs": [{"ip": HOST_IP}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": rfc3339(start_time),
        "containerStatuses": [dict(s) for s in containers.main],
    }
    if containers.init:
        status["initContainerStatuses"] = [dict(s) for s in containers.init]
    return status
