"""An offline evaluator of Kubernetes NetworkPolicies (networking.k8s.io/v1), for tests (pure).

The local cluster has no CNI, so the API server stores the sale's policies and nothing enforces them.
This module answers "would a conforming plugin let this connection through?" from the policy objects
and a small model of the cluster (namespaces, pods with labels, addresses and container ports, and
hosts outside the pod network), following the API reference and the concepts page:

- A pod is isolated for ingress (egress) when some policy of its namespace selects it and lists
  `Ingress` (`Egress`) in `policyTypes`. `policyTypes` left out means `Ingress`, plus `Egress` when the
  policy has egress rules.
- A connection is allowed when the source's egress allows it (or the source is not isolated for
  egress, or is not a pod) AND the destination's ingress allows it (likewise). Policies are additive:
  one matching rule of any selecting policy is enough.
- A rule matches when one of its peers matches (no `from`/`to`: every peer) and one of its ports
  matches (no `ports`: every port). A peer is `ipBlock` (the address in `cidr` and in no `except`),
  or `podSelector` and/or `namespaceSelector`: both in one peer means both (AND); `podSelector` alone
  means pods of the policy's own namespace; `namespaceSelector` alone, every pod of those namespaces.
  Selectors match pods only, never hosts.
- A port is `protocol` (default TCP) and `port`, a number (with `endPort`: the range) or a name,
  resolved against the destination pod's `containerPorts` (a host has no named ports).
- Traffic between a pod and the node it runs on is always allowed (the kubelet's probes), and a pod
  can always reach itself.

ipBlock is matched against every address, pods' included: the spec leaves ipBlock on pod addresses
to the plugin, so the evaluator takes the more permissive reading (a "must not reach" stays honest).
Egress to a Service's ClusterIP is judged on the address it is translated to (the endpoint), as the
plugins do: model the destination as the pod or host behind it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"

Protocol = Literal["TCP", "UDP", "SCTP"]


@dataclass(frozen=True)
class ContainerPort:
    number: int
    name: str = ""
    protocol: Protocol = "TCP"


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    ip: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[ContainerPort, ...] = ()
    node: str = ""


@dataclass(frozen=True)
class Host:
    """An address outside the pod network: a node, a database outside the cluster, an internet client."""

    ip: str
    node: str = ""  # the node's name when this host is a node


Endpoint = Pod | Host


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def all_labels(self) -> dict[str, str]:
        """Its labels with the one the API server sets on every namespace."""
        return {**self.labels, NAMESPACE_NAME_LABEL: self.name}


def pod_from_manifest(namespace: str, name: str, ip: str, template: Mapping[str, Any], node: str = "") -> Pod:
    """A pod as a Deployment's or StatefulSet's pod template would make it (labels, container ports)."""
    ports = tuple(
        ContainerPort(int(port["containerPort"]), str(port.get("name", "")), port.get("protocol", "TCP"))
        for container in template["spec"]["containers"]
        for port in container.get("ports", [])
    )
    return Pod(namespace, name, ip, dict(template["metadata"].get("labels", {})), ports, node)


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist), ANDed."""
    if selector is None:
        return True
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(operator)
        if ok is None:
            raise ValueError(f"unknown selector operator {operator!r}")
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class Connection:
    source: Endpoint
    destination: Endpoint
    port: int
    protocol: Protocol = "TCP"


@dataclass(frozen=True)
class Cluster:
    namespaces: Sequence[Namespace]
    policies: Sequence[Mapping[str, Any]]

    def allowed(self, source: Endpoint, destination: Endpoint, port: int, protocol: Protocol = "TCP") -> bool:
        """Whether a connection from `source` to `destination`:`port` gets through every policy."""
        if source == destination:
            return True
        connection = Connection(source, destination, port, protocol)
        return self._egress_allowed(connection) and self._ingress_allowed(connection)

    def _egress_allowed(self, connection: Connection) -> bool:
        source, destination = connection.source, connection.destination
        if not isinstance(source, Pod) or _is_own_node(destination, source):
            return True
        return self._some_rule_allows(source, "Egress", connection.destination, connection)

    def _ingress_allowed(self, connection: Connection) -> bool:
        source, destination = connection.source, connection.destination
        if not isinstance(destination, Pod) or _is_own_node(source, destination):
            return True
        return self._some_rule_allows(destination, "Ingress", connection.source, connection)

    def _some_rule_allows(self, pod: Pod, direction: str, peer: Endpoint, connection: Connection) -> bool:
        """Not isolated in this direction, or one rule of a policy selecting `pod` matches `peer`."""
        policies = [
            policy
            for policy in self.policies
            if policy["metadata"]["namespace"] == pod.namespace
            and direction in policy_types(policy)
            and selector_matches(policy["spec"].get("podSelector") or {}, pod.labels)
        ]
        if not policies:
            return True
        rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for policy in policies:
            for rule in policy["spec"].get(rules_key) or []:
                peers, ports = rule.get(peers_key), rule.get("ports")
                if peers and not any(self._peer_matches(p, policy, peer) for p in peers):
                    continue
                if not ports or any(_port_matches(p, connection) for p in ports):
                    return True
        return False

    def _peer_matches(self, peer: Mapping[str, Any], policy: Mapping[str, Any], endpoint: Endpoint) -> bool:
        if "ipBlock" in peer:
            return _in_block(endpoint.ip, peer["ipBlock"])
        if not isinstance(endpoint, Pod):
            return False
        if "namespaceSelector" in peer:
            namespace = self._namespace(endpoint.namespace)
            if not selector_matches(peer["namespaceSelector"], namespace.all_labels):
                return False
        elif endpoint.namespace != policy["metadata"]["namespace"]:
            return False  # podSelector alone: the policy's own namespace
        return selector_matches(peer.get("podSelector"), endpoint.labels)

    def _namespace(self, name: str) -> Namespace:
        return next((ns for ns in self.namespaces if ns.name == name), Namespace(name))


def policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy["spec"]
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def _is_own_node(endpoint: Endpoint, pod: Pod) -> bool:
    return isinstance(endpoint, Host) and bool(endpoint.node) and endpoint.node == pod.node


def _in_block(ip: str, block: Mapping[str, Any]) -> bool:
    address = ipaddress.ip_address(ip)
    network = ipaddress.ip_network(block["cidr"], strict=False)
    if address.version != network.version or address not in network:
        return False
    return not any(address in ipaddress.ip_network(cidr, strict=False) for cidr in block.get("except") or [])


def _port_matches(rule: Mapping[str, Any], connection: Connection) -> bool:
    """A port of a rule; a named one is the destination pod's containerPort of that name and protocol."""
    if rule.get("protocol", "TCP") != connection.protocol:
        return False
    wanted = rule.get("port")
    if wanted is None:
        return True  # every port of that protocol
    if isinstance(wanted, str) and not wanted.isdigit():
        return connection.port in _named(connection.destination, wanted, connection.protocol)
    first = int(wanted)
    return first <= connection.port <= int(rule.get("endPort", first))


def _named(destination: Endpoint, name: str, protocol: Protocol) -> Iterable[int]:
    if not isinstance(destination, Pod):
        return ()
    return [p.number for p in destination.ports if p.name == name and p.protocol == protocol]
