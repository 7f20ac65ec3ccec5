"""The platform leaves nothing behind - no process (pods, CoreDNS, nginx, the service proxy included),
no mount, no state: not after `make down`, not after a Ctrl-C mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import kubernetes
import redis

from flashsale_dev.cluster.launcher import NodeAgent
from flashsale_dev.leftovers import (
    address_reservations,
    assert_mounted_privately,
    deploy_echo_app,
    mount_points,
    mounts_mentioning,
    network_processes,
    still_running,
)
from flashsale_dev.paths import tool_dir
from flashsale_dev.ports import LOCK_DIR
from flashsale_dev.process import processes_mentioning
from flashsale_dev.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


def test_make_up_then_make_down_leaves_no_process_and_no_state() -> None:
    # Under /tmp itself: pytest's tmp_path is closed to the postgres user.
    state_dir = Path(tempfile.gettempdir()) / f"flashsale-test-up-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "FLASHSALE_STATE_DIR": str(state_dir)}
    mounts_before = mount_points()
    try:
        up = subprocess.run(["make", "-s", "up"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600, check=False)  # fmt: skip
        assert up.returncode == 0, up.stderr
        exports = _parse_exports(up.stdout)
        assert set(exports) >= {"REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "PROMETHEUS_URL",
                                "KUBECONFIG"}  # fmt: skip
        assert (state_dir / "env").read_text() == up.stdout
        with redis.Redis.from_url(exports["REDIS_URL"]) as client:
            assert client.ping()
        nodes = subprocess.run(
            [str(_kubectl()), "get", "nodes", "-o", "name"],
            env={**env, "KUBECONFIG": exports["KUBECONFIG"]}, capture_output=True, text=True, timeout=60,
            check=True,
        ).stdout  # fmt: skip
        assert "node/flashsale-1" in nodes
        # Real pods with volumes behind a LoadBalancer, through the KUBECONFIG that `make up` exports.
        cluster_root = Path(exports["KUBECONFIG"]).parent
        with kubernetes.config.new_client_from_config(config_file=exports["KUBECONFIG"]) as api:
            app = deploy_echo_app(api, "leftovers", cluster_root / NodeAgent.name)
        platform_pids = json.loads((state_dir / "platform" / "platform.json").read_text())["pids"]
        network = network_processes(platform_pids)
        assert processes_mentioning(str(state_dir))
        assert_mounted_privately(app.pods, app.pod_dirs)
    finally:
        down = subprocess.run(["make", "-s", "down"], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert processes_mentioning(str(state_dir)) == []
    assert still_running(app.pods) == set(), "pods' processes left"
    assert still_running(network) == set(), "service proxy, CoreDNS or nginx processes left"
    assert mounts_mentioning([str(state_dir), *app.pod_dirs]) == []
    assert mount_points() == mounts_before
    assert address_reservations(app.addresses) == [], "address reservations left"
    assert not state_dir.exists()
    ports = [int(exports[key].rsplit(":", 1)[1].split("/")[0]) for key in ("REDIS_URL", "PROMETHEUS_URL")]
    assert not [port for port in ports if (LOCK_DIR / f"{port}.lock").exists()], "port reservations left"


def test_an_interrupted_test_run_leaves_no_process_and_no_mount(tmp_path: Path) -> None:
    marker = tmp_path / "started.json"
    mounts_before = mount_points()
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(REPO / "tests/integration/interrupted_run.py")],
        cwd=REPO, env={**os.environ, "FLASHSALE_INTERRUPT_MARKER": str(marker)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: marker.exists() or child.poll() is not None, timeout=600, what="child run started")
        assert child.poll() is None, child.stdout.read().decode() if child.stdout else ""
        started = json.loads(marker.read_text())
        roots: list[str] = started["roots"]
        pod_dirs: list[str] = started["pod_dirs"]
        addresses: list[str] = started["addresses"]
        pods = {int(pid): start for pid, start in started["pods"].items()}
        network = {int(pid): start for pid, start in started["network"].items()}
        assert all(processes_mentioning(root) for root in roots)
        assert still_running(pods) == set(pods)  # the network's processes were checked by the child
        assert_mounted_privately(pods, pod_dirs)
        assert mounts_mentioning(roots) == []
        child.send_signal(signal.SIGINT)
        output, _ = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert b"KeyboardInterrupt" in output or b"Interrupted" in output, output.decode()
    assert still_running(pods) == set(), "pods' processes left"
    assert still_running(network) == set(), "service proxy, CoreDNS or nginx processes left"
    for root in roots:
        assert processes_mentioning(root) == [], f"left behind under {root}"
        assert not Path(root).exists()
    assert mounts_mentioning([*roots, *pod_dirs]) == []
    assert mount_points() == mounts_before
    assert address_reservations(addresses) == [], "address reservations left"


def _parse_exports(text: str) -> dict[str, str]:
    return dict(
        line.removeprefix("export ").split("=", 1) for line in text.splitlines() if line.startswith("export ")
    )


def _kubectl() -> Path:
    return tool_dir("k8s") / "kubectl"
