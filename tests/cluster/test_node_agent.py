"""The node agent really runs the project's images on the flashsale pool, as local processes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest

from flashsale_dev.cluster import LocalCluster
from flashsale_dev.cluster.nodes import FLASHSALE_PLACEMENT, deployment
from flashsale_dev.process import processes_mentioning
from flashsale_dev.waiting import wait_for

pytestmark = pytest.mark.cluster

ECHO = "flashsale/echo:dev"
HTTP_READY = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1}


def echo_container(**extra: Any) -> dict[str, Any]:
    return {"name": "echo", "image": ECHO, "ports": [{"name": "http", "containerPort": 8080}], **extra}


def echo_deployment(name: str, replicas: int) -> dict[str, Any]:
    return deployment(name, replicas, [echo_container(readinessProbe=HTTP_READY)], FLASHSALE_PLACEMENT)


def bare_pod(name: str, *containers: dict[str, Any], restart_policy: str = "Always") -> dict[str, Any]:
    spec = {"containers": list(containers), "restartPolicy": restart_policy, **FLASHSALE_PLACEMENT}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def ask(ip: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"http://{ip}:8080/", timeout=5).json()
    return answer


def echo_pids(namespace: str) -> set[int]:
    """The live echo server processes on this machine that belong to pods of `namespace`."""
    found = set()
    for pid in processes_mentioning("flashsale_dev.echo_server"):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if f"POD_NAMESPACE={namespace}".encode() in environ:
            found.add(pid)
    return found


def container_status(core: Any, namespace: str, name: str) -> Any:
    statuses = core.read_namespaced_pod(name, namespace).status.container_statuses or []
    return statuses[0] if statuses else None


def pod_when(core: Any, namespace: str, name: str, check: Callable[[Any], Any], what: str) -> Any:
    """Wait until `check(pod)` holds; return that pod."""

    def probe() -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        return pod if check(pod) else None

    return wait_for(probe, timeout=120, what=f"pod {name}: {what}")


def container_when(core: Any, namespace: str, name: str, check: Callable[[Any], Any], what: str) -> Any:
    """Wait until `check(status)` holds for the pod's (first) container; return that status."""

    def probe() -> Any:
        status = container_status(core, namespace, name)
        return status if status is not None and check(status) else None

    return wait_for(probe, timeout=120, what=f"pod {name}: {what}")


def is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def serving_pods(core: Any, namespace: str, app: str, count: int) -> dict[str, dict[str, Any]]:
    """Wait until exactly `count` pods of `app` are Ready and each answers as itself; name -> answer."""

    def answers() -> dict[str, dict[str, Any]] | None:
        pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
        if len(pods) != count or not all(is_ready(p) for p in pods):
            return None
        by_name = {p.metadata.name: ask(p.status.pod_ip) for p in pods}
        return by_name if all(answer["pod"] == name for name, answer in by_name.items()) else None

    return wait_for(answers, timeout=120, what=f"{count} pods of {app} answering as themselves")


def test_a_deployment_of_the_echo_image_runs_scales_and_stops_real_processes(
    kube_api: Any, namespace: str
) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, echo_deployment("echo", 2))

    two = serving_pods(core, namespace, "echo", 2)
    assert {a["namespace"] for a in two.values()} == {namespace}
    ips = [a["ip"] for a in two.values()]
    assert len(set(ips)) == 2
    assert all(ip.startswith("127.") and not ip.startswith("127.0.0.") for ip in ips)
    assert echo_pids(namespace) == {a["pid"] for a in two.values()}  # exactly these, no more
    for pod in core.list_namespaced_pod(namespace).items:
        status = pod.status.container_statuses[0]
        assert status.container_id == f"flashsale-local://{two[pod.metadata.name]['pid']}"
        assert (status.ready, status.started, status.restart_count) == (True, True, 0)
        assert pod.status.host_ip == "127.0.0.1"

    apps.patch_namespaced_deployment_scale("echo", namespace, {"spec": {"replicas": 3}})
    three = serving_pods(core, namespace, "echo", 3)
    assert two.items() <= three.items()  # the first two kept running, untouched
    pids = {a["pid"] for a in three.values()}
    assert echo_pids(namespace) == pids

    apps.delete_namespaced_deployment("echo", namespace)
    wait_for(lambda: not core.list_namespaced_pod(namespace).items, timeout=120, what="the pods deleted")
    wait_for(lambda: not echo_pids(namespace), timeout=60, what="no echo process left",
             describe=lambda: f"still running: {echo_pids(namespace)}")  # fmt: skip
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_a_readiness_probe_gates_ready(kube_api: Any, namespace: str, tmp_path: Path) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    marker = tmp_path / "warm"
    probe = {"exec": {"command": ["test", "-f", str(marker)]}, "periodSeconds": 1, "failureThreshold": 1}
    core.create_namespaced_pod(namespace, bare_pod("gated", echo_container(readinessProbe=probe)))

    def serving_but_unready() -> bool:
        pod = core.read_namespaced_pod("gated", namespace)
        status = pod.status.container_statuses[0]
        return bool(status.state.running and ask(pod.status.pod_ip)["pod"] == "gated" and not is_ready(pod))

    wait_for(serving_but_unready, timeout=120, what="the process serving while the pod is not Ready")
    marker.touch()
    pod_when(core, namespace, "gated", is_ready, "Ready once the probe passes")
    marker.unlink()
    pod_when(core, namespace, "gated", lambda p: not is_ready(p), "not Ready once it fails again")
    assert container_status(core, namespace, "gated").restart_count == 0  # readiness never restarts


def test_a_crashing_container_is_restarted_with_back_off(kube_api: Any, namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    crash = echo_container(command=[sys.executable, "-c", "import sys; print('crashing'); sys.exit(3)"])
    core.create_namespaced_pod(namespace, bare_pod("crasher", crash))

    def backing_off_after_restarts() -> Any:
        status = container_status(core, namespace, "crasher")
        waiting = status and status.state.waiting
        return (
            status if waiting and waiting.reason == "CrashLoopBackOff" and status.restart_count >= 2 else None
        )

    status = wait_for(backing_off_after_restarts, timeout=120, what="CrashLoopBackOff after 2 restarts")
    assert status.last_state.terminated.exit_code == 3
    assert status.last_state.terminated.reason == "Error"
    assert core.read_namespaced_pod("crasher", namespace).status.phase == "Running"


def test_a_failing_liveness_probe_restarts_the_container(
    kube_api: Any, namespace: str, tmp_path: Path
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    sick = tmp_path / "sick"
    probe = {"exec": {"command": ["test", "!", "-f", str(sick)]}, "periodSeconds": 1, "failureThreshold": 2}
    core.create_namespaced_pod(namespace, bare_pod("patient", echo_container(livenessProbe=probe)))
    first = container_when(core, namespace, "patient", lambda s: s.state.running, "running")

    sick.touch()
    restarted = container_when(core, namespace, "patient", lambda s: s.restart_count >= 1, "restarted")
    assert restarted.last_state.terminated.container_id == first.container_id


def test_deletion_sigkills_what_ignores_sigterm_once_the_grace_period_is_over(
    kube_api: Any, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"
    pod = bare_pod("stubborn", echo_container(command=[sys.executable, "-c", stubborn]))
    pod["spec"]["terminationGracePeriodSeconds"] = 2
    core.create_namespaced_pod(namespace, pod)
    running = container_when(core, namespace, "stubborn", lambda s: s.state.running, "running")
    pid = int(running.container_id.removeprefix("flashsale-local://"))
    assert Path(f"/proc/{pid}").exists()

    core.delete_namespaced_pod("stubborn", namespace)
    wait_for(lambda: not core.list_namespaced_pod(namespace).items, timeout=120, what="the pod deleted")
    assert not Path(f"/proc/{pid}").exists()  # the final delete comes only after the SIGKILL


def test_a_pod_that_vanishes_without_a_graceful_deletion_has_its_process_killed(
    kube_api: Any, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespaced_pod(namespace, bare_pod("forced", echo_container()))
    running = container_when(core, namespace, "forced", lambda s: s.state.running, "running")
    pid = int(running.container_id.removeprefix("flashsale-local://"))

    core.delete_namespaced_pod("forced", namespace, grace_period_seconds=0)  # gone from the API at once
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=60, what=f"process {pid} killed")


@pytest.mark.parametrize(("code", "phase"), [(0, "Succeeded"), (4, "Failed")])
def test_a_pod_that_is_never_restarted_ends_in_its_final_phase(
    kube_api: Any, namespace: str, code: int, phase: str
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    once = echo_container(command=[sys.executable, "-c", f"raise SystemExit({code})"])
    core.create_namespaced_pod(namespace, bare_pod("once", once, restart_policy="Never"))
    pod_when(core, namespace, "once", lambda p: p.status.phase == phase, phase)
    assert container_status(core, namespace, "once").state.terminated.exit_code == code


def test_init_containers_run_to_completion_before_the_main_container(kube_api: Any, namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    migrate = {"name": "migrate", "image": ECHO, "command": [sys.executable, "-c", "print('migrated')"]}
    tcp_ready = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    pod = bare_pod("initialized", echo_container(readinessProbe=tcp_ready))
    pod["spec"]["initContainers"] = [migrate]
    core.create_namespaced_pod(namespace, pod)

    ready = pod_when(core, namespace, "initialized", is_ready, "Ready")
    done = ready.status.init_container_statuses[0].state.terminated
    assert (done.exit_code, done.reason) == (0, "Completed")
    assert ready.status.container_statuses[0].state.running.started_at >= done.finished_at
    assert ask(ready.status.pod_ip)["pod"] == "initialized"


def test_the_environment_comes_from_the_pod_its_secrets_and_config_maps(
    cluster: LocalCluster, kube_api: Any, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "db"}, "stringData": {"password": "s3cret"}}
    )
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "sale"}, "data": {"STOCK": "100"}})
    dump = echo_container(
        command=[sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
        env=[
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "URL", "value": "http://$(POD_IP):8080"},
        ],
        envFrom=[{"configMapRef": {"name": "sale"}, "prefix": "SALE_"}],
    )
    core.create_namespaced_pod(namespace, bare_pod("env", dump, restart_policy="Never"))
    pod = pod_when(core, namespace, "env", lambda p: p.status.phase == "Succeeded", "Succeeded")

    log = cluster.node_agent.dir / "pods" / f"{namespace}_env_echo.log"
    env = json.loads(log.read_text().splitlines()[-1])
    assert env["POD_IP"] == pod.status.pod_ip
    assert (env["POD_NAME"], env["POD_NAMESPACE"]) == ("env", namespace)
    assert (env["PASSWORD"], env["SALE_STOCK"], env["NODE"]) == ("s3cret", "100", pod.spec.node_name)
    assert env["URL"] == f"http://{pod.status.pod_ip}:8080"


def test_other_images_are_simulated_and_unknown_project_images_wait(kube_api: Any, namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespaced_pod(namespace, bare_pod("third-party", {"name": "web", "image": "nginx:1.27"}))
    core.create_namespaced_pod(namespace, bare_pod("typo", {"name": "app", "image": "flashsale/nope:dev"}))

    simulated = pod_when(core, namespace, "third-party", is_ready, "Ready")
    assert simulated.status.pod_ip.startswith("127.")
    assert simulated.status.container_statuses[0].container_id.startswith("flashsale-simulated://")
    status = container_when(core, namespace, "typo", lambda s: s.state.waiting, "waiting")
    waiting = status.state.waiting
    assert waiting.reason == "ImageNotKnown"
    assert "PROJECT_IMAGES" in waiting.message


def test_pods_come_back_when_the_agent_is_stopped_or_killed_and_started_again(
    cluster: LocalCluster, kube_api: Any, namespace: str
) -> None:
    core, apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, echo_deployment("echo", 2))
    before = serving_pods(core, namespace, "echo", 2)

    for end in (cluster.node_agent.stop, cluster.node_agent.kill):  # SIGTERM, then SIGKILL (PDEATHSIG)
        try:
            end()
            wait_for(
                lambda: not echo_pids(namespace), timeout=60, what=f"no echo process after {end.__name__}"
            )
        finally:
            cluster.node_agent.start()
        after = serving_pods(core, namespace, "echo", 2)
        assert {n: a["ip"] for n, a in after.items()} == {n: a["ip"] for n, a in before.items()}
        assert echo_pids(namespace) == {a["pid"] for a in after.values()}
    restarts = [
        p.status.container_statuses[0].restart_count for p in core.list_namespaced_pod(namespace).items
    ]
    assert restarts == [2, 2]
