"""The rendered Corefile, DNS hosts file and nginx configuration; the Service range reservation."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path
from typing import Any

import pytest

from flashsale_dev.cluster.dns import render_corefile, render_hosts
from flashsale_dev.cluster.edge_config import Site, render_nginx_conf, render_sites, sites
from flashsale_dev.cluster.endpoints import Backend
from flashsale_dev.cluster.node_agent.addresses import PodAddresses
from flashsale_dev.cluster.service_range import ServiceRange, in_reserved_range

pytestmark = pytest.mark.unit


def pod(name: str, ip: str, *, ready: bool = True, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}], **spec},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def service(name: str, cluster_ip: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"clusterIP": cluster_ip, "selector": {"app": "db"}, "ports": [{"port": 80}], **spec},
    }


def test_the_corefile_serves_cluster_local_from_hosts_then_the_api_and_forwards_the_rest() -> None:
    corefile = render_corefile("127.200.0.10", Path("/c/coredns.kubeconfig"), Path("/c/hosts"), 9153)
    cluster, rest = corefile.split("\n\n")
    assert cluster.startswith("cluster.local:53 {")
    assert "bind 127.200.0.10" in cluster
    assert "bind 127.200.0.10" in rest
    assert cluster.index("hosts /c/hosts") < cluster.index("kubernetes cluster.local")
    assert "fallthrough" in cluster
    assert "reload 1s" in cluster
    assert "kubeconfig /c/coredns.kubeconfig" in cluster
    assert "ready 127.0.0.1:9153" in cluster
    assert rest.startswith(".:53 {")
    assert "forward . /etc/resolv.conf" in rest


def test_the_hosts_file_names_headless_services_and_statefulset_pods() -> None:
    pods = [
        pod("db-0", "127.1.0.1", hostname="db-0", subdomain="db"),
        pod("db-1", "127.1.0.2", hostname="db-1", subdomain="db"),
        pod("db-2", "127.1.0.3", hostname="db-2", subdomain="db", ready=False),
        pod("stray", "127.1.0.4", hostname="stray", subdomain="other"),
    ]
    hosts = render_hosts([service("db", "None"), service("web", "127.200.0.20")], pods)
    lines = [line for line in hosts.splitlines() if not line.startswith("#")]
    assert lines == [
        "127.1.0.1 db.ns.svc.cluster.local",
        "127.1.0.1 db-0.db.ns.svc.cluster.local",
        "127.1.0.2 db.ns.svc.cluster.local",
        "127.1.0.2 db-1.db.ns.svc.cluster.local",
        "127.1.0.4 db.ns.svc.cluster.local",  # selected, but its subdomain names another Service
    ]


def test_sites_are_the_load_balancer_services_with_an_address() -> None:
    lb = service("web", "127.200.0.20", type="LoadBalancer", ports=[{"port": 80, "targetPort": "http"}])
    plain = service("plain", "127.200.0.21")
    waiting = service("waiting", "127.200.0.22", type="LoadBalancer")
    found = sites([lb, plain, waiting], [pod("a", "127.1.0.1")], {("ns", "web"): "127.5.0.1"})
    assert found == [Site(("ns", "web"), "127.5.0.1", 80, (Backend("127.1.0.1", 8080),))]


def test_a_site_proxies_with_keepalive_caches_only_public_and_answers_json_when_down() -> None:
    up = Site(("ns", "web"), "127.5.0.1", 80, (Backend("127.1.0.1", 8080), Backend("127.1.0.2", 8080)))
    text = render_sites([up])
    assert "upstream web.ns.80.lb {" in text
    assert "server 127.1.0.1:8080;" in text
    assert "server 127.1.0.2:8080;" in text
    assert "keepalive 32;" in text
    assert 'proxy_set_header Connection "";' in text
    assert "listen 127.5.0.1:80;" in text
    assert "proxy_no_cache $edge_not_public;" in text
    assert "proxy_cache_revalidate on;" in text
    assert "add_header X-Cache-Status $upstream_cache_status always;" in text
    assert "error_page 502 503 504 =503 @unavailable;" in text
    assert '\'{"error": "unavailable", "message": "no endpoint of service ns/web answered"}\'' in text


def test_a_site_without_endpoints_answers_503_json_with_retry_after() -> None:
    text = render_sites([Site(("ns", "web"), "127.5.0.1", 80, ())])
    assert "upstream" not in text
    assert "proxy_pass" not in text
    assert "add_header Retry-After 1 always;" in text
    assert "default_type application/json;" in text
    assert 'return 503 \'{"error": "unavailable"' in text


def test_nginx_writes_only_under_its_root_and_caches_only_public() -> None:
    conf = render_nginx_conf(Path("/r/lb-edge"), 7000, run_as_root=True)
    assert "user root;" in conf
    assert "user root;" not in render_nginx_conf(Path("/r"), 7000, run_as_root=False)
    for directive in ("pid", "error_log", "proxy_temp_path", "client_body_temp_path", "proxy_cache_path"):
        line = next(line for line in conf.splitlines() if line.strip().startswith(directive + " "))
        assert "/r/lb-edge/" in line
    assert "access_log off;" in conf
    assert "include /r/lb-edge/sites.conf;" in conf
    assert "listen 127.0.0.1:7000;" in conf
    assert "~*(^|[\\s,])public($|[\\s,]) 0;" in conf
    assert "default 1;" in conf


def test_service_ranges_are_exclusive_and_pod_addresses_avoid_them(tmp_path: Path) -> None:
    first = ServiceRange(tmp_path, random.Random(1))
    second = ServiceRange(tmp_path, random.Random(1))  # same choice first: must skip the held one
    assert first.network != second.network
    assert first.address(1) == str(first.network.network_address + 1)
    assert in_reserved_range(first.address(77), tmp_path)
    second_octet = first.network.network_address.packed[1]
    # A pod allocator that would only ever pick this range gets nothing there.
    pods = PodAddresses(tmp_path)
    assert pods.take(preferred=f"127.{second_octet}.3.3") != f"127.{second_octet}.3.3"
    first.release()
    assert not in_reserved_range(f"127.{second_octet}.3.3", tmp_path)
    assert pods.take(preferred=f"127.{second_octet}.3.3") == f"127.{second_octet}.3.3"
    # Now a pod holds an address there: no Service range is placed over it.
    third = ServiceRange(tmp_path, random.Random(1))
    assert ipaddress.IPv4Address(f"127.{second_octet}.3.3") not in third.network
    for reservation in (second, third):
        reservation.release()
    pods.release_all()
