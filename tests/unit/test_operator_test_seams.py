"""Test-only code cannot be switched on in production: the shipped operator package and manifests hold
no kill point and no switch for one; only the test platform's build hooks them in.

The product exposes one seam, `flashsale_operator.checkpoints.checkpoint`, a no-op until code in the
same process calls `set_hook` (the local platform's `flashsale_dev.operator_test_build`)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import signal
from pathlib import Path

import pytest

import flashsale_operator
from flashsale_dev import operator_kill_points
from flashsale_dev.cluster.images import find_image
from flashsale_dev.operator_install import operator_manifests_for_tests
from flashsale_operator import checkpoints

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parents[2]
SHIPPED = [ROOT / "operator", ROOT / "manifests", ROOT / "charts"]
# What switched the kill points on or named them, before they moved to tests/flashsale_dev.
SWITCHES = ("test-exit-after", "TEST_KILL_POINTS", "killpoint", "kill point", "SIGKILL", "os.kill")


def shipped_files() -> list[Path]:
    return [p for root in SHIPPED if root.exists() for p in root.rglob("*") if p.is_file() and
            p.suffix in {".py", ".yaml", ".yml", ".md", ".toml", ".json", ".txt"}]  # fmt: skip


@pytest.mark.parametrize("switch", SWITCHES)
def test_nothing_shipped_names_a_kill_point_or_a_switch_for_one(switch: str) -> None:
    files = shipped_files()
    assert any(p.name == "operator.yaml" for p in files)  # the walk sees the manifests
    found = [str(p.relative_to(ROOT)) for p in files if switch.lower() in p.read_text().lower()]
    assert found == []


def test_no_environment_or_annotation_arms_anything_in_the_shipped_operator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("FLASHSALE_OPERATOR_TEST_KILL_POINTS", "FLASHSALE_OPERATOR_CHECKPOINTS", "FLASHSALE_TEST"):
        monkeypatch.setenv(name, "enabled")
    for module in pkgutil.walk_packages(flashsale_operator.__path__, "flashsale_operator."):
        importlib.import_module(module.name)  # every module imported: none of them installs a hook
    assert checkpoints._hook is None
    armed = {"metadata": {"uid": "u1", "annotations": {operator_kill_points.ANNOTATION: "live,scaled"}}}
    for step in operator_kill_points.STEPS:
        checkpoints.checkpoint(step, armed)  # still alive: a no-op


def test_only_the_test_platform_runs_the_test_build() -> None:
    (deployment,) = [d for d in operator_manifests_for_tests() if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "flashsale/operator-test:0.1.0"
    test_build, shipped = find_image(container["image"]), find_image("flashsale/operator:0.1.0")
    assert test_build is not None
    assert shipped is not None
    assert test_build.entrypoint[1:] == ("-m", "flashsale_dev.operator_test_build")
    assert shipped.entrypoint[1:] == ("-m", "flashsale_operator")


def test_a_sale_arms_the_kill_points_it_names_and_no_others() -> None:
    named = {operator_kill_points.ANNOTATION: "prewarmed, live,bogus"}
    assert operator_kill_points.armed(named) == {"prewarmed", "live"}
    assert operator_kill_points.armed({}) == frozenset()
    assert {"prewarmed", "before-start", "flipped", "live", "scaled"} == operator_kill_points.STEPS


def test_the_test_build_kills_once_per_sale_and_step(monkeypatch: pytest.MonkeyPatch) -> None:
    kills: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: kills.append(sig))

    class Markers:  # Redis SET NX, as the marker uses it
        def __init__(self) -> None:
            self.keys: set[str] = set()

        def set(self, key: str, value: str, *, nx: bool, ex: int) -> bool:
            fresh = key not in self.keys
            self.keys.add(key)
            return fresh

    markers = Markers()
    hook = operator_kill_points.KillPoints(lambda: markers)  # type: ignore[arg-type, return-value]
    sale = {"metadata": {"uid": "u1", "annotations": {operator_kill_points.ANNOTATION: "flipped"}}}
    hook("prewarmed", sale)
    hook("flipped", sale)
    hook("flipped", sale)  # the restarted operator passes the same step again: it lives
    assert kills == [signal.SIGKILL]
