"""The node agent's nodes report healthy, addressable, sized, and keep a Lease; pods get 127.x."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from flashsale_dev.cluster.node_agent.addresses import PodAddresses, is_pod_address, random_pod_address
from flashsale_dev.cluster.node_agent.node_status import LEASE_DURATION, lease, micro_time, node_status

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0


def test_a_node_reports_ready_without_pressure_on_loopback() -> None:
    status = node_status("flashsale-1", [], T0, "v1.36.3-flashsale-node-agent", "boot")
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {
        "Ready": "True",
        "MemoryPressure": "False",
        "DiskPressure": "False",
        "PIDPressure": "False",
    }
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    assert {"type": "Hostname", "address": "flashsale-1"} in status["addresses"]
    assert status["allocatable"]["pods"] == "110"
    assert status["nodeInfo"]["kubeletVersion"] == "v1.36.3-flashsale-node-agent"


def test_heartbeats_move_but_transitions_stay() -> None:
    first = node_status("flashsale-1", [], T0, "v", "boot")["conditions"]
    later = node_status("flashsale-1", first, T0 + 60, "v", "boot")["conditions"]
    assert later[0]["lastTransitionTime"] == first[0]["lastTransitionTime"]
    assert later[0]["lastHeartbeatTime"] != first[0]["lastHeartbeatTime"]


def test_the_lease_belongs_to_its_node() -> None:
    body = lease("flashsale-1", "uid-1", T0)
    assert body["metadata"]["namespace"] == "kube-node-lease"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert body["spec"] == {
        "holderIdentity": "flashsale-1", "leaseDurationSeconds": LEASE_DURATION,
        "renewTime": "2023-11-14T22:13:20.000000Z",
    }  # fmt: skip
    assert micro_time(T0 + 0.25) == "2023-11-14T22:13:20.250000Z"


def test_pod_addresses_are_loopback_but_never_the_machines_own() -> None:
    rng = random.Random(7)
    for _ in range(1000):
        assert is_pod_address(random_pod_address(rng))
    assert not is_pod_address("127.0.0.1")
    assert not is_pod_address("127.0.0.42")
    assert not is_pod_address("10.244.0.3")
    assert not is_pod_address("not an address")


def test_an_address_is_held_by_one_reservation_at_a_time(tmp_path: Path) -> None:
    first, second = PodAddresses(tmp_path), PodAddresses(tmp_path)
    taken = first.take("127.9.9.9")
    assert taken == "127.9.9.9"  # the preferred address, as after an agent restart
    assert second.take("127.9.9.9") != "127.9.9.9"  # flock: another holder cannot have it
    first.release(taken)
    assert not (tmp_path / "ip-127.9.9.9.lock").exists()
    assert second.take("127.9.9.9") == "127.9.9.9"
    second.release_all()


def test_a_killed_agents_leftover_lock_file_is_discarded_unless_someone_holds_it(tmp_path: Path) -> None:
    (tmp_path / "ip-127.4.4.4.lock").touch()  # what a SIGKILLed agent leaves behind
    holder, other = PodAddresses(tmp_path), PodAddresses(tmp_path)
    other.discard_stale("127.4.4.4")
    assert not (tmp_path / "ip-127.4.4.4.lock").exists()
    holder.take("127.5.5.5")
    other.discard_stale("127.5.5.5")
    assert (tmp_path / "ip-127.5.5.5.lock").exists()  # held: left alone
    holder.release_all()
