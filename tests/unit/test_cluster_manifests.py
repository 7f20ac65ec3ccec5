"""The cluster's nodes, shop and kubeconfigs are rendered by pure functions."""

from __future__ import annotations

import base64
from typing import Any

from flashsale_dev.cluster.kubeconfig import render_kubeconfig
from flashsale_dev.cluster.nodes import (
    DEFAULT_POOLS,
    FLASHSALE_PLACEMENT,
    FLASHSALE_TAINT,
    KUBELET_LABEL,
    KWOK,
    NODE_AGENT,
    SYSTEM_PLACEMENT,
    NodePool,
    node_manifest,
    pool_manifests,
    shop_deployment,
)


def test_the_default_cluster_has_a_shop_pool_a_tainted_flashsale_pool_and_a_system_pool() -> None:
    nodes = pool_manifests(DEFAULT_POOLS)
    by_pool: dict[str, list[dict[str, Any]]] = {}
    for node in nodes:
        by_pool.setdefault(node["metadata"]["labels"]["pool"], []).append(node)
    assert set(by_pool) == {"shop", "flashsale", "system"}
    assert len(by_pool["shop"]) >= 2
    assert all(n["spec"]["taints"] == [] for n in by_pool["shop"])
    assert all(n["spec"]["taints"] == [FLASHSALE_TAINT] for n in by_pool["flashsale"])
    # One untainted node where the platform's own pods really run.
    assert [n["metadata"]["name"] for n in by_pool["system"]] == ["system-1"]
    assert by_pool["system"][0]["spec"]["taints"] == []
    assert by_pool["system"][0]["metadata"]["labels"][KUBELET_LABEL] == NODE_AGENT


def test_platform_pods_select_the_system_pool_and_sale_pods_never_do() -> None:
    assert SYSTEM_PLACEMENT == {"nodeSelector": {"pool": "system"}}
    assert FLASHSALE_PLACEMENT["nodeSelector"] == {"pool": "flashsale"}


def test_each_node_says_who_plays_its_kubelet() -> None:
    shop = node_manifest(NodePool("shop", 1, KWOK), 1)
    sale = node_manifest(NodePool("flashsale", 1, NODE_AGENT, (FLASHSALE_TAINT,)), 2)
    assert shop["metadata"]["name"] == "shop-1"
    assert shop["metadata"]["labels"][KUBELET_LABEL] == KWOK
    assert sale["metadata"]["name"] == "flashsale-2"
    assert sale["metadata"]["labels"][KUBELET_LABEL] == NODE_AGENT


def test_taints_are_copied_not_shared_between_nodes() -> None:
    pool = NodePool("flashsale", 2, NODE_AGENT, (FLASHSALE_TAINT,))
    first, second = pool_manifests((pool,))
    first["spec"]["taints"][0]["value"] = "changed"
    assert second["spec"]["taints"][0]["value"] == "flashsale"
    assert FLASHSALE_TAINT["value"] == "flashsale"


def test_the_regular_shop_stays_on_its_pool() -> None:
    web = shop_deployment("web", 3)
    assert web["spec"]["replicas"] == 3
    assert web["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "shop"}
    assert "tolerations" not in web["spec"]["template"]["spec"]
    assert web["spec"]["selector"]["matchLabels"] == web["spec"]["template"]["metadata"]["labels"]


def test_a_kubeconfig_embeds_the_ca_and_the_credentials() -> None:
    config = render_kubeconfig("https://127.0.0.1:6443", b"CA", "admin", {"token": "t"})
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"CA"
    assert config["users"] == [{"name": "admin", "user": {"token": "t"}}]
    assert config["current-context"] == config["contexts"][0]["name"]
