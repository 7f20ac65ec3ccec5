"""A pod's resolv.conf, hosts file, Service variables and mount plan; the local-path provisioner's
decisions. All pure."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from flashsale_dev.cluster.images import image_roots
from flashsale_dev.cluster.local_path import (
    PROVISIONER,
    SELECTED_NODE,
    needs_volume,
    persistent_volume,
    to_reclaim,
)
from flashsale_dev.cluster.node_agent.dns_files import (
    ResolvConf,
    parse_resolv_conf,
    pod_resolv_conf,
    render_hosts,
    render_resolv_conf,
)
from flashsale_dev.cluster.node_agent.mount_ns import covered, mount_order, nearest_existing
from flashsale_dev.cluster.node_agent.service_env import service_env
from flashsale_dev.paths import REPO_ROOT

pytestmark = pytest.mark.unit

HOST = parse_resolv_conf(
    "# the host's\nnameserver 10.0.0.2\nsearch corp.example lab.example\noptions rotate\n"
)


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web-0", "namespace": "sale"}, "spec": spec}


def test_the_host_resolv_conf_is_parsed() -> None:
    assert HOST.nameservers == ("10.0.0.2",)
    assert HOST.searches == ("corp.example", "lab.example")
    assert HOST.options == ("rotate",)


def test_cluster_first_points_at_the_cluster_dns_and_searches_the_namespace_first() -> None:
    assert render_resolv_conf(pod_resolv_conf(pod(), "127.7.0.10", HOST)) == (
        "search sale.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\n"
        "nameserver 127.7.0.10\n"
        "options ndots:5\n"
    )


def test_dns_policy_default_none_and_dns_config() -> None:
    assert pod_resolv_conf(pod(dnsPolicy="Default"), "127.7.0.10", HOST) == HOST
    config = {
        "nameservers": ["1.1.1.1"],
        "searches": ["x.example"],
        "options": [{"name": "ndots", "value": "2"}],
    }
    assert pod_resolv_conf(pod(dnsPolicy="None", dnsConfig=config), "127.7.0.10", HOST) == ResolvConf(
        ("1.1.1.1",), ("x.example",), ("ndots:2",)
    )
    merged = pod_resolv_conf(pod(dnsConfig={"options": [{"name": "ndots", "value": "1"}, {"name": "edns0"}]}),
                             "127.7.0.10", ResolvConf())  # fmt: skip
    assert merged.options == ("ndots:1", "edns0")


def test_the_hosts_file_names_the_pod_and_its_stateful_set_domain() -> None:
    plain = render_hosts(pod(), "127.1.2.3")
    assert "127.0.0.1\tlocalhost\n" in plain
    assert plain.endswith("127.1.2.3\tweb-0\n")
    stateful = render_hosts(pod(hostname="web-0", subdomain="web"), "127.1.2.3")
    assert stateful.endswith("127.1.2.3\tweb-0.web.sale.svc.cluster.local\tweb-0\n")
    aliased = render_hosts(pod(hostAliases=[{"ip": "127.9.9.9", "hostnames": ["a", "b"]}]), "127.1.2.3")
    assert aliased.endswith("# Entries added by HostAliases.\n127.9.9.9\ta\tb\n")


def service(name: str, ip: str, *ports: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"clusterIP": ip, "ports": list(ports)}}


MASTER = service("kubernetes", "127.7.0.1", {"name": "https", "port": 443, "protocol": "TCP"})


def test_every_pod_learns_the_apiservers_address_as_the_kubelet_sets_it() -> None:
    assert service_env(
        pod(enableServiceLinks=False), [service("redis", "127.7.0.9", {"port": 6379})], MASTER
    ) == {
        "KUBERNETES_SERVICE_HOST": "127.7.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443",
        "KUBERNETES_PORT": "tcp://127.7.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://127.7.0.1:443",
        "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443",
        "KUBERNETES_PORT_443_TCP_ADDR": "127.7.0.1",
    }


def test_service_links_cover_the_namespaces_services_but_not_headless_ones() -> None:
    own = [service("sale-redis", "127.7.0.9", {"port": 6379}), service("peers", "None", {"port": 80})]
    env = service_env(pod(), own, None)
    assert env["SALE_REDIS_SERVICE_HOST"] == "127.7.0.9"
    assert env["SALE_REDIS_PORT_6379_TCP_ADDR"] == "127.7.0.9"
    assert not any(key.startswith("PEERS_") for key in env)


def test_a_missing_mount_point_gets_its_room_in_the_nearest_existing_directory() -> None:
    existing = {"/", "/var", "/run"}
    assert nearest_existing("/run/secrets/kubernetes.io/serviceaccount", existing.__contains__) == "/run"
    assert nearest_existing("/data", existing.__contains__) == "/"
    binds = [{"target": "/data/cache"}, {"target": "/etc/hosts"}, {"target": "/data"}]
    assert [b["target"] for b in mount_order(binds)] == ["/data", "/data/cache", "/etc/hosts"]


def test_the_images_files_a_volume_would_hide_are_shown_again() -> None:
    """Locally an image's files are the host's: a checkout under /tmp under an emptyDir at /tmp."""
    roots = ["/tmp/ci/checkout", "/root/.cache/flashsale", "/tmpfoo/venv"]
    assert covered(roots, ["/tmp", "/var/run/secrets/kubernetes.io/serviceaccount"]) == ["/tmp/ci/checkout"]
    assert covered(roots, ["/tmp/"]) == ["/tmp/ci/checkout"]
    assert covered(roots, ["/data"]) == []


def test_the_image_roots_hold_this_checkout_and_this_python_once_each() -> None:
    roots = image_roots()
    assert str(REPO_ROOT) in roots
    assert any(sys.prefix.startswith(root) for root in roots)
    assert not any(a != b and a.startswith(b + "/") for a in roots for b in roots)


def claim(**annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "data-db-0", "namespace": "sale", "uid": "c-1", "annotations": annotations},
        "spec": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}},
    }  # fmt: skip


def test_the_provisioner_waits_for_the_scheduler_then_makes_a_pre_bound_volume(tmp_path: Any) -> None:
    classes = {"standard": PROVISIONER, "other": "example.com/nfs"}
    assert not needs_volume(claim(), classes)  # WaitForFirstConsumer: no node chosen yet
    chosen = claim(**{SELECTED_NODE: "flashsale-2"})
    assert needs_volume(chosen, classes)
    assert not needs_volume({**chosen, "spec": {**chosen["spec"], "storageClassName": "other"}}, classes)
    assert not needs_volume({**chosen, "spec": {**chosen["spec"], "volumeName": "pvc-c-1"}}, classes)

    volume = persistent_volume(chosen, tmp_path / "pvc-c-1")
    assert volume["metadata"]["name"] == "pvc-c-1"
    assert volume["spec"]["claimRef"]["uid"] == "c-1"
    assert volume["spec"]["capacity"] == {"storage": "1Gi"}
    assert volume["spec"]["hostPath"]["path"] == str(tmp_path / "pvc-c-1")
    term = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term["values"] == ["flashsale-2"]
    assert not to_reclaim(volume)
    assert to_reclaim({**volume, "status": {"phase": "Released"}})
    foreign = {**volume, "metadata": {"name": "x"}, "status": {"phase": "Released"}}
    assert not to_reclaim(foreign)  # never a volume another provisioner made
