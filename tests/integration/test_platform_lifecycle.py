"""The platform leaves nothing behind: not after `make down`, not after a Ctrl-C mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import redis

from flashsale_dev.paths import tool_dir
from flashsale_dev.ports import LOCK_DIR
from flashsale_dev.process import processes_mentioning
from flashsale_dev.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


def test_make_up_then_make_down_leaves_no_process_and_no_state() -> None:
    # Under /tmp itself: pytest's tmp_path is closed to the postgres user.
    state_dir = Path(tempfile.gettempdir()) / f"flashsale-test-up-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "FLASHSALE_STATE_DIR": str(state_dir)}
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
        assert processes_mentioning(str(state_dir))
    finally:
        down = subprocess.run(["make", "-s", "down"], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert processes_mentioning(str(state_dir)) == []
    assert not state_dir.exists()
    ports = [int(exports[key].rsplit(":", 1)[1].split("/")[0]) for key in ("REDIS_URL", "PROMETHEUS_URL")]
    assert not [port for port in ports if (LOCK_DIR / f"{port}.lock").exists()], "port reservations left"


def test_an_interrupted_test_run_leaves_no_process(tmp_path: Path) -> None:
    marker = tmp_path / "started.json"
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(REPO / "tests/integration/interrupted_run.py")],
        cwd=REPO, env={**os.environ, "FLASHSALE_INTERRUPT_MARKER": str(marker)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: marker.exists() or child.poll() is not None, timeout=600, what="child run started")
        assert child.poll() is None, child.stdout.read().decode() if child.stdout else ""
        roots = json.loads(marker.read_text())["roots"]
        assert all(processes_mentioning(root) for root in roots)
        child.send_signal(signal.SIGINT)
        output, _ = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert b"KeyboardInterrupt" in output or b"Interrupted" in output, output.decode()
    for root in roots:
        assert processes_mentioning(root) == [], f"left behind under {root}"
        assert not Path(root).exists()


def _parse_exports(text: str) -> dict[str, str]:
    return dict(
        line.removeprefix("export ").split("=", 1) for line in text.splitlines() if line.startswith("export ")
    )


def _kubectl() -> Path:
    return tool_dir("k8s") / "kubectl"
