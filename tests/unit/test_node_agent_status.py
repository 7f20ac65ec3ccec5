"""Pod phase, conditions and container life follow the kubelet's rules (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from flashsale_dev.cluster.node_agent import lifecycle
from flashsale_dev.cluster.node_agent.pod_status import (
    ContainerStatuses,
    initializing,
    pod_conditions,
    pod_phase,
    render_pod_status,
)

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0
RUNNING = lifecycle.running(T0)
CRASHED = lifecycle.terminated(1, T0, T0 + 1, "flashsale-local://42")
DONE = lifecycle.terminated(0, T0, T0 + 1, "flashsale-local://43")


def container(
    state: dict[str, Any], *, ready: bool = False, last: dict[str, Any] | None = None, name: str = "main"
) -> dict[str, Any]:
    return {"name": name, "state": state, "lastState": last or {}, "ready": ready}


@pytest.mark.parametrize(
    ("states", "policy", "phase"),
    [
        ([lifecycle.waiting("ContainerCreating")], "Always", "Pending"),
        ([lifecycle.waiting("ImageNotKnown"), RUNNING], "Always", "Pending"),
        ([RUNNING], "Always", "Running"),
        ([RUNNING, DONE], "Never", "Running"),
        ([DONE], "Never", "Succeeded"),
        ([DONE, CRASHED], "Never", "Failed"),
        ([DONE], "OnFailure", "Succeeded"),
        ([CRASHED], "OnFailure", "Running"),  # it will be restarted
        ([DONE], "Always", "Running"),
    ],
)
def test_phase(states: list[dict[str, Any]], policy: str, phase: str) -> None:
    statuses = [container(state, name=f"c{i}") for i, state in enumerate(states)]
    assert pod_phase(statuses, policy) == phase


def test_a_container_backing_off_after_a_crash_keeps_the_pod_running() -> None:
    backing_off = container(lifecycle.waiting("CrashLoopBackOff"), last=CRASHED)
    assert pod_phase([backing_off], "Always") == "Running"


def test_conditions_say_which_containers_are_not_ready() -> None:
    pod: dict[str, Any] = {"spec": {}, "status": {}}
    statuses = [container(RUNNING, ready=True, name="a"), container(RUNNING, name="b")]
    conditions = {c["type"]: c for c in pod_conditions(pod, ContainerStatuses(statuses), "Running", T0)}
    assert conditions["Initialized"]["status"] == "True"
    assert conditions["PodReadyToStartContainers"]["status"] == "True"
    assert conditions["ContainersReady"]["status"] == "False"
    assert conditions["Ready"]["message"] == "containers with unready status: [b]"
    assert conditions["Ready"]["lastTransitionTime"] == lifecycle.rfc3339(T0)


def test_a_ready_condition_clears_the_reason_and_keeps_its_transition_time() -> None:
    earlier = {"type": "Ready", "status": "True", "lastTransitionTime": "2023-01-01T00:00:00Z"}
    pod: dict[str, Any] = {"spec": {}, "status": {"conditions": [earlier]}}
    statuses = ContainerStatuses([container(RUNNING, ready=True)])
    ready = {c["type"]: c for c in pod_conditions(pod, statuses, "Running", T0)}
    # None deletes the field in the strategic-merge patch, where a False condition left one.
    assert ready["Ready"]["reason"] is None
    assert ready["Ready"]["message"] is None
    assert ready["Ready"]["lastTransitionTime"] == "2023-01-01T00:00:00Z"
    assert ready["ContainersReady"]["lastTransitionTime"] == lifecycle.rfc3339(T0)


def test_readiness_gates_hold_ready_until_their_condition_is_true() -> None:
    pod: dict[str, Any] = {"spec": {"readinessGates": [{"conditionType": "example.com/warm"}]}, "status": {}}
    statuses = ContainerStatuses([container(RUNNING, ready=True)])
    closed = {c["type"]: c for c in pod_conditions(pod, statuses, "Running", T0)}
    assert closed["ContainersReady"]["status"] == "True"
    assert closed["Ready"]["status"] == "False"
    assert closed["Ready"]["reason"] == "ReadinessGatesNotReady"
    pod["status"]["conditions"] = [{"type": "example.com/warm", "status": "True"}]
    opened = {c["type"]: c for c in pod_conditions(pod, statuses, "Running", T0)}
    assert opened["Ready"]["status"] == "True"


def test_a_finished_pod_is_not_ready_because_it_completed() -> None:
    conditions = {
        c["type"]: c for c in pod_conditions({}, ContainerStatuses([container(DONE)]), "Succeeded", T0)
    }
    assert conditions["Ready"]["reason"] == "PodCompleted"
    assert conditions["PodReadyToStartContainers"]["status"] == "False"


def test_the_rendered_status_carries_addresses_and_start_time() -> None:
    pod = {"spec": {"restartPolicy": "Always"}, "status": {}}
    statuses = ContainerStatuses([container(RUNNING, ready=True)])
    status = render_pod_status(pod, statuses, pod_ip="127.5.6.7", start_time=T0, now=T0)
    assert status["phase"] == "Running"
    assert status["podIP"] == "127.5.6.7"
    assert status["podIPs"] == [{"ip": "127.5.6.7"}]
    assert status["hostIP"] == "127.0.0.1"
    assert status["startTime"] == "2023-11-14T22:13:20Z"
    assert "initContainerStatuses" not in status


def test_init_containers_hold_the_pod_pending_and_uninitialized() -> None:
    pod = {"spec": {"restartPolicy": "Always"}, "status": {}}
    statuses = ContainerStatuses(
        main=[initializing({"name": "main", "image": "flashsale/echo:dev"})],
        init=[container(DONE, name="migrate"), container(RUNNING, name="wait-for-db")],
        incomplete_init=["wait-for-db"],
    )
    status = render_pod_status(pod, statuses, pod_ip="127.5.6.7", start_time=T0, now=T0)
    assert status["phase"] == "Pending"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Initialized"]["status"] == "False"
    assert conditions["Initialized"]["message"] == "containers with incomplete status: [wait-for-db]"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert [s["name"] for s in status["initContainerStatuses"]] == ["migrate", "wait-for-db"]


def test_a_failed_init_container_that_is_not_retried_fails_the_pod() -> None:
    pod = {"spec": {"restartPolicy": "Never"}, "status": {}}
    statuses = ContainerStatuses(
        main=[initializing({"name": "main"})],
        init=[container(CRASHED, name="migrate")],
        incomplete_init=["migrate"],
        init_failed=True,
    )
    assert render_pod_status(pod, statuses, pod_ip="127.5.6.7", start_time=T0, now=T0)["phase"] == "Failed"


def test_sidecars_count_for_readiness_but_not_for_the_phase() -> None:
    statuses = ContainerStatuses(
        main=[container(DONE, name="job")],
        init=[container(RUNNING, name="proxy")],
        sidecars=frozenset({"proxy"}),
    )
    pod = {"spec": {"restartPolicy": "Never"}, "status": {}}
    assert render_pod_status(pod, statuses, pod_ip="127.5.6.7", start_time=T0, now=T0)["phase"] == "Succeeded"
    running = ContainerStatuses(
        main=[container(RUNNING, ready=True)],
        init=[container(RUNNING, name="proxy")],
        sidecars=frozenset({"proxy"}),
    )
    conditions = {c["type"]: c for c in pod_conditions(pod, running, "Running", T0)}
    assert conditions["Ready"]["message"] == "containers with unready status: [proxy]"


@pytest.mark.parametrize(
    ("policy", "exit_code", "by_probe", "restart"),
    [
        ("Always", 0, False, True),
        ("Always", 1, False, True),
        ("OnFailure", 0, False, False),
        ("OnFailure", 1, False, True),
        ("OnFailure", 0, True, True),  # a liveness kill is a failure whatever the exit code
        ("Never", 1, False, False),
        ("Never", 0, True, False),
    ],
)
def test_restart_policy(policy: str, exit_code: int, by_probe: bool, restart: bool) -> None:
    assert lifecycle.should_restart(policy, exit_code, killed_by_probe=by_probe) is restart


def test_backoff_doubles_from_one_second_up_to_thirty() -> None:
    assert [lifecycle.backoff_delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_signals_become_128_plus_the_signal() -> None:
    assert lifecycle.exit_code_of(-9) == 137
    assert lifecycle.exit_code_of(-15) == 143
    assert lifecycle.exit_code_of(3) == 3


def test_terminated_states_name_their_reason() -> None:
    assert CRASHED["terminated"]["reason"] == "Error"
    assert DONE["terminated"]["reason"] == "Completed"
    assert CRASHED["terminated"]["containerID"] == "flashsale-local://42"
    started = lifecycle.terminated(128, None, T0, "", reason="StartError", message="no such file")
    assert started["terminated"] == {
        "exitCode": 128,
        "reason": "StartError",
        "finishedAt": "2023-11-14T22:13:20Z",
        "message": "no such file",
    }
