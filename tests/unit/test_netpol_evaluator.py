"""The offline NetworkPolicy evaluator (flashsale_dev.netpol) against the cases of the Kubernetes docs.

The policies are the examples of kubernetes.io "Network Policies" (concepts) and the API reference's
rules for defaults; each case says which connection a conforming plugin lets through.
"""

from __future__ import annotations

from typing import Any

import pytest

from flashsale_dev.netpol import Cluster, ContainerPort, Host, Namespace, Pod, policy_types, selector_matches


def policy(namespace: str, spec: dict[str, Any], name: str = "p") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


NAMESPACES = [
    Namespace("default"),
    Namespace("myproject-ns", {"project": "myproject"}),
    Namespace("elsewhere"),
    Namespace("alice-ns", {"user": "alice"}),
]
DB = Pod("default", "db", "10.244.0.10", {"role": "db"}, (ContainerPort(6379, "redis"),), node="n1")
FRONTEND = Pod("default", "web", "10.244.0.11", {"role": "frontend"}, node="n2")
OTHER_DEFAULT = Pod("default", "batch", "10.244.0.12", {"role": "batch"}, node="n1")
IN_MYPROJECT = Pod("myproject-ns", "any", "10.244.1.10", {"role": "whatever"}, node="n2")
FRONTEND_ELSEWHERE = Pod("elsewhere", "web", "10.244.2.10", {"role": "frontend"}, node="n2")

# The docs' "test-network-policy".
TEST_NETWORK_POLICY = policy(
    "default",
    {
        "podSelector": {"matchLabels": {"role": "db"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [
                    {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                    {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                    {"podSelector": {"matchLabels": {"role": "frontend"}}},
                ],
                "ports": [{"protocol": "TCP", "port": 6379}],
            }
        ],
        "egress": [
            {"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 5978}]}
        ],
    },
)


@pytest.mark.parametrize(
    ("source", "destination", "port", "protocol", "allowed"),
    [
        (FRONTEND, DB, 6379, "TCP", True),  # podSelector: role=frontend in the policy's namespace
        (IN_MYPROJECT, DB, 6379, "TCP", True),  # namespaceSelector: any pod of project=myproject
        (Host("172.17.0.5"), DB, 6379, "TCP", True),  # in the ipBlock
        (Host("172.17.1.5"), DB, 6379, "TCP", False),  # in its `except`
        (FRONTEND_ELSEWHERE, DB, 6379, "TCP", False),  # podSelector alone: not another namespace
        (OTHER_DEFAULT, DB, 6379, "TCP", False),  # no peer matches
        (FRONTEND, DB, 6380, "TCP", False),  # another port
        (FRONTEND, DB, 6379, "UDP", False),  # another protocol
        (DB, Host("10.0.0.7"), 5978, "TCP", True),  # egress to the ipBlock on 5978
        (DB, Host("10.0.0.7"), 5979, "TCP", False),
        (DB, Host("10.0.1.7"), 5978, "TCP", False),
        (DB, FRONTEND, 80, "TCP", False),  # db is isolated for egress: nothing else
        (FRONTEND, OTHER_DEFAULT, 80, "TCP", True),  # neither selected: not isolated
        (Host("10.0.0.1", node="n1"), DB, 9999, "TCP", True),  # db's own node (the kubelet) always
        (Host("10.0.0.2", node="n2"), DB, 9999, "TCP", False),  # another node is just an address
        (DB, DB, 1234, "TCP", True),  # a pod cannot block itself
    ],
)
def test_the_docs_test_network_policy(
    source: Any, destination: Any, port: int, protocol: Any, allowed: bool
) -> None:
    cluster = Cluster(NAMESPACES, [TEST_NETWORK_POLICY])
    assert cluster.allowed(source, destination, port, protocol) is allowed


def client_rule(*peers: dict[str, Any]) -> dict[str, Any]:
    return policy(
        "default", {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{"from": list(peers)}]}
    )


ALICE_CLIENT = Pod("alice-ns", "c", "10.244.3.1", {"role": "client"})
ALICE_OTHER = Pod("alice-ns", "o", "10.244.3.2", {"role": "other"})
DEFAULT_CLIENT = Pod("default", "c", "10.244.0.20", {"role": "client"})


def test_namespace_and_pod_selector_in_one_peer_mean_both_and_in_two_peers_either() -> None:
    """The docs: "one element with both" (AND) against "two elements" (OR)."""
    both = Cluster(
        NAMESPACES,
        [
            client_rule(
                {
                    "namespaceSelector": {"matchLabels": {"user": "alice"}},
                    "podSelector": {"matchLabels": {"role": "client"}},
                }
            )
        ],
    )
    either = Cluster(
        NAMESPACES,
        [
            client_rule(
                {"namespaceSelector": {"matchLabels": {"user": "alice"}}},
                {"podSelector": {"matchLabels": {"role": "client"}}},
            )
        ],
    )
    assert both.allowed(ALICE_CLIENT, DB, 6379)
    assert not both.allowed(ALICE_OTHER, DB, 6379)
    assert not both.allowed(DEFAULT_CLIENT, DB, 6379)
    assert either.allowed(ALICE_CLIENT, DB, 6379)
    assert either.allowed(ALICE_OTHER, DB, 6379)  # any pod of alice's namespaces
    assert either.allowed(DEFAULT_CLIENT, DB, 6379)  # role=client in the policy's namespace
    assert not either.allowed(Host("172.17.0.5"), DB, 6379)  # selectors never match a host


def test_the_docs_default_policies() -> None:
    select_all: dict[str, Any] = {"podSelector": {}}
    deny_ingress = policy("default", {**select_all, "policyTypes": ["Ingress"]})
    allow_all_ingress = policy("default", {**select_all, "ingress": [{}], "policyTypes": ["Ingress"]})
    deny_egress = policy("default", {**select_all, "policyTypes": ["Egress"]})
    allow_all_egress = policy("default", {**select_all, "egress": [{}], "policyTypes": ["Egress"]})
    deny_all = policy("default", {**select_all, "policyTypes": ["Ingress", "Egress"]})
    outside = Host("192.0.2.1")
    assert not Cluster(NAMESPACES, [deny_ingress]).allowed(FRONTEND, DB, 6379)
    assert Cluster(NAMESPACES, [deny_ingress]).allowed(DB, outside, 443)  # egress not isolated
    assert Cluster(NAMESPACES, [deny_ingress, allow_all_ingress]).allowed(ALICE_CLIENT, DB, 1)  # additive
    assert not Cluster(NAMESPACES, [deny_egress]).allowed(DB, outside, 443)
    assert Cluster(NAMESPACES, [deny_egress]).allowed(outside, DB, 6379)
    assert Cluster(NAMESPACES, [deny_egress, allow_all_egress]).allowed(DB, outside, 443)
    assert not Cluster(NAMESPACES, [deny_all]).allowed(FRONTEND, DB, 6379)
    assert not Cluster(NAMESPACES, [deny_all]).allowed(ALICE_CLIENT, DB, 6379)  # ingress: from anywhere
    assert Cluster(NAMESPACES, [deny_all]).allowed(ALICE_CLIENT, ALICE_OTHER, 80)  # another namespace


def test_policy_types_default_to_ingress_plus_egress_when_there_are_egress_rules() -> None:
    assert policy_types(policy("d", {"podSelector": {}})) == ["Ingress"]
    assert policy_types(policy("d", {"podSelector": {}, "egress": [{}]})) == ["Ingress", "Egress"]
    only_egress_rules = policy(
        "default", {"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}
    )
    cluster = Cluster(NAMESPACES, [only_egress_rules])
    assert cluster.allowed(DB, Host("10.0.0.10"), 53, "UDP")
    assert not cluster.allowed(DB, Host("10.0.0.10"), 53, "TCP")
    assert not cluster.allowed(FRONTEND, DB, 6379)  # ingress isolated too, with no rule


def test_end_port_gives_a_range_and_the_protocol_defaults_to_tcp() -> None:
    """The docs' multi-port egress example: 10.0.0.0/24, TCP 32000-32768."""
    ranged = policy(
        "default",
        {
            "podSelector": {"matchLabels": {"role": "db"}},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"port": 32000, "endPort": 32768}]}
            ],
        },
    )
    cluster = Cluster(NAMESPACES, [ranged])
    for port, allowed in ((31999, False), (32000, True), (32500, True), (32768, True), (32769, False)):
        assert cluster.allowed(DB, Host("10.0.0.9"), port) is allowed, port
    assert not cluster.allowed(DB, Host("10.0.0.9"), 32500, "UDP")


def test_named_ports_are_the_destination_pods_container_ports() -> None:
    named_in = policy(
        "default",
        {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{"ports": [{"port": "redis"}]}]},
    )
    named_out = policy(
        "default",
        {
            "podSelector": {"matchLabels": {"role": "frontend"}},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"port": "redis"}]}],
        },
    )
    cluster = Cluster(NAMESPACES, [named_in, named_out])
    assert cluster.allowed(FRONTEND, DB, 6379)  # the db declares redis = 6379
    assert not cluster.allowed(FRONTEND, DB, 6380)
    assert not cluster.allowed(FRONTEND, Host("10.0.0.5"), 6379)  # a host has no named ports
    udp_redis = Pod("default", "u", "10.244.0.30", {"role": "x"}, (ContainerPort(6379, "redis", "UDP"),))
    assert not cluster.allowed(FRONTEND, udp_redis, 6379)  # the name is declared for UDP only


def test_the_namespace_name_label_and_match_expressions() -> None:
    by_name = policy(
        "default",
        {
            "podSelector": {
                "matchExpressions": [{"key": "role", "operator": "In", "values": ["db", "cache"]}]
            },
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "alice-ns"}}}
                    ]
                }
            ],
        },
    )
    cluster = Cluster(NAMESPACES, [by_name])
    assert cluster.allowed(ALICE_OTHER, DB, 6379)
    assert not cluster.allowed(IN_MYPROJECT, DB, 6379)
    labels = {"tier": "a"}
    assert selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["b"]}]}, labels
    )
    assert selector_matches({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, labels)
    assert not selector_matches(
        {"matchLabels": {"tier": "a"}, "matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels
    )
    with pytest.raises(ValueError, match="operator"):
        selector_matches({"matchExpressions": [{"key": "x", "operator": "Near"}]}, labels)


def test_ip_blocks_of_the_other_family_never_match() -> None:
    v6 = policy(
        "default",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "fd00::/8"}}]}],
        },
    )
    cluster = Cluster(NAMESPACES, [v6])
    assert cluster.allowed(DB, Host("fd00::5"), 443)
    assert not cluster.allowed(DB, Host("10.0.0.5"), 443)
