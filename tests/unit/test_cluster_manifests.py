"""The cluster's nodes, shop and kubeconfigs are rendered by pure functions."""

from __future__ import annotations

import base64

from flashsale_dev.cluster.kubeconfig import render_kubeconfig
from flashsale_dev.cluster.nodes import (
    DEFAULT_POOLS,
    FLASHSALE_TAINT,
    KUBELET_LABEL,
    KWOK,
    NODE_AGENT,
    NodePool,
    node_manifest,
    pool_manifests,
    shop_deployment,
)


def test_the_default_cluster_has_a_shop_pool_and_a_tainted_flashsale_pool() -> None:
    nodes = pool_manifests(DEFAULT_POOLS)
    by_pool: dict[str, list[dict[str, object]]] = {}
    for node in nodes:
        by_pool.setdefault(node["metadata"]["labels"]["pool"], []).append(node)
    assert set(by_pool) == {"shop", "flashsale"}
    assert len(by_pool["shop"]) >= 2
    assert all(n["spec"]["taints"] == [] for n in by_pool["shop"])  # type: ignore[index]
    assert all(n["spec"]["taints"] == [FLASHSALE_TAINT] for n in by_pool["flashsale"])  # type: ignore[index]


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
