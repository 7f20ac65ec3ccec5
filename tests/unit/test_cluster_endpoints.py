"""Endpoints as the EndpointSlice controller would compute them, and the proxy's routes from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from flashsale_dev.cluster.endpoints import Backend, port_backends, selected_pods, target_port, tcp_routes

pytestmark = pytest.mark.unit

APISERVER = Backend("127.0.0.1", 6443)


def pod(
    name: str, ip: str | None = "127.1.1.1", *, ready: bool = True, ns: str = "ns", **extra: Any
) -> dict[str, Any]:
    labels = extra.pop("labels", {"app": "web"})
    meta = {"name": name, "namespace": ns, "labels": labels, **extra.pop("meta", {})}
    ports = [
        {"name": "http", "containerPort": 8080},
        {"name": "dns", "containerPort": 5353, "protocol": "UDP"},
    ]
    status = {"phase": extra.pop("phase", "Running"), "conditions": [{"type": "Ready", "status": str(ready)}]}
    if ip:
        status["podIP"] = ip
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "c", "ports": ports}], **extra},
        "status": status,
    }


def service(name: str = "web", *, ns: str = "ns", ip: str = "127.200.0.20", **spec: Any) -> dict[str, Any]:
    spec.setdefault("selector", {"app": "web"})
    spec.setdefault("ports", [{"port": 80, "targetPort": "http"}])
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, **spec}}


def names(pods: list[Mapping[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_only_ready_running_matching_pods_of_the_namespace_are_endpoints() -> None:
    pods = [
        pod("b-ready", "127.1.1.2"),
        pod("a-ready", "127.1.1.1"),
        pod("unready", "127.1.1.3", ready=False),
        pod("no-ip", None),
        pod("terminating", "127.1.1.4", meta={"deletionTimestamp": "2026-01-01T00:00:00Z"}),
        pod("finished", "127.1.1.5", phase="Succeeded"),
        pod("other-app", "127.1.1.6", labels={"app": "db"}),
        pod("other-ns", "127.1.1.7", ns="elsewhere"),
    ]
    assert names(selected_pods(service(), pods)) == ["a-ready", "b-ready"]
    assert "unready" in names(selected_pods(service(publishNotReadyAddresses=True), pods))
    assert selected_pods(service(selector={}), pods) == []  # no selector: endpoints are the user's


def test_the_target_port_is_a_number_a_named_container_port_or_the_port_itself() -> None:
    web = pod("a")
    assert target_port({"port": 80, "targetPort": 9000}, web) == 9000
    assert target_port({"port": 80, "targetPort": "9001"}, web) == 9001
    assert target_port({"port": 80, "targetPort": "http"}, web) == 8080
    assert target_port({"port": 80}, web) == 80
    assert target_port({"port": 80, "targetPort": "missing"}, web) is None
    assert target_port({"port": 53, "targetPort": "dns"}, web) is None  # a UDP port for a TCP one
    assert target_port({"port": 53, "targetPort": "dns", "protocol": "UDP"}, web) == 5353


def test_a_pod_without_the_named_port_is_left_out_of_that_port_only() -> None:
    bare = pod("bare", "127.1.1.9")
    bare["spec"]["containers"][0]["ports"] = []
    pods = [pod("a", "127.1.1.1"), bare]
    assert port_backends(service(), {"port": 80, "targetPort": "http"}, pods) == [Backend("127.1.1.1", 8080)]
    assert len(port_backends(service(), {"port": 80, "targetPort": 8080}, pods)) == 2


def test_routes_cover_every_tcp_port_and_send_kubernetes_to_the_apiserver() -> None:
    services = [
        service(ports=[{"port": 80, "targetPort": "http"}, {"port": 53, "protocol": "UDP"}]),
        service("empty", ip="127.200.0.21", selector={"app": "none"}),
        service("headless", ip="None"),
        service("kube-dns", ns="kube-system", ip="127.200.0.10", selector={}),
        {
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {"clusterIP": "127.200.0.1", "ports": [{"port": 443, "targetPort": 6443}]},
        },
    ]
    routes = tcp_routes(services, [pod("a", "127.1.1.1")], APISERVER)
    assert routes == {
        ("127.200.0.20", 80): [Backend("127.1.1.1", 8080)],
        ("127.200.0.21", 80): [],  # known, but nothing to forward to: the proxy does not listen
        ("127.200.0.1", 443): [APISERVER],
    }
