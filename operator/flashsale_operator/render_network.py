"""The sale's NetworkPolicies: deny by default, then what each pod needs and nothing else (pure).

- `<sale>-default-deny` selects every pod of the sale (instance + part-of labels): no ingress, no
  egress, also for a sale pod no allow-policy names.
- `<sale>-allow-gateway`: ingress on its public port from anywhere (the crowd comes through the
  LoadBalancer, whose source addresses are the nodes' or the internet's), and on its admin port
  (health, readiness, metrics, OpenAPI) from the platform's scrapers only (`metrics_scrapers` in the
  operator's config: the monitoring namespace by default); egress to DNS, Redis, Kafka and PostgreSQL
  (the order view reads orders, the payment updates them).
- `<sale>-allow-consumer`: ingress only on its metrics port, from the scrapers; egress to DNS, Redis,
  Kafka and PostgreSQL.

The kubelet's probes need no rule: they come from the pod's own node, and traffic between a pod and
its node is always allowed whatever the policies say (the NetworkPolicy spec; every conforming
plugin). Nothing else reaches the admin port: a shop pod, or another sale's, gets no answer there.

- `<sale>-allow-kafka`, only with a dedicated queue (render_kafka): the broker takes 9092 from the
  sale's gateways and consumers and from the operator's namespace (the operator creates the topic and
  reads the lag), 9093 (its controller) from itself only; its egress is DNS and itself. The gateways
  and consumers then reach that broker (pods selected by its labels, port 9092) and not the
  platform's Kafka.

DNS: port 53 (UDP and TCP) to pods of `kube-system` only. "Any address on 53" would let a pod talk to
any server on the internet that listens on port 53, a ready-made way out; the cluster's resolver
lives in kube-system on every common distribution (a node-local DNS cache on a link-local address
would need its own ipBlock).

Middleware: the host and port come from the platform's URLs. An IP address gives an ipBlock of that
one address. A Service's name in the cluster (`<svc>.<namespace>.svc[.cluster.local]`, or a pod of a
headless Service, `<pod>.<svc>.<namespace>.svc...`) gives the pods of that namespace on that port: the
plugins judge a connection to a ClusterIP on the pod it is forwarded to. (An ExternalName Service or
one without a selector leads outside that namespace: give the address instead.) Any other DNS name
cannot be selected by a NetworkPolicy (it sees addresses, and a name may resolve to many or change),
so it gives the port alone, to any address. Kafka clients reach every broker the metadata names, not
only the bootstrap servers: list them all in the bootstrap setting.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from flashsale_operator import queue
from flashsale_operator.config import OperatorConfig
from flashsale_operator.render_env import ADMIN_PORT, GATEWAY_PORT, METRICS_PORT
from flashsale_operator.render_meta import SaleRef, child_name, metadata, sale_pods, selector
from flashsale_operator.spec import QueueMode

NAMESPACE_NAME: Final = "kubernetes.io/metadata.name"  # set by the API server on every namespace
REDIS_PORT: Final = 6379
KAFKA_PORT: Final = 9092
POSTGRES_PORT: Final = 5432
DNS_RULE: Final = {
    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


def _endpoint(host_port: str, default_port: int) -> Endpoint:
    """`host`, `host:port`, `[v6]:port`; raises ValueError for a port that is not a number."""
    parts = urlsplit("//" + host_port.strip())
    if not parts.hostname:
        raise ValueError("no host in a middleware address")  # the text may hold a password
    return Endpoint(parts.hostname, parts.port or default_port)


def _endpoints(hosts: list[str], default_port: int, what: str) -> list[Endpoint]:
    found = [_endpoint(item, default_port) for item in hosts if item.strip()]
    if not found:  # a Unix socket or the libpq default: nothing a pod could reach
        raise ValueError(f"no host in the {what} setting")
    return found


def redis_endpoints(url: str) -> list[Endpoint]:
    return _endpoints([urlsplit(url).netloc.rpartition("@")[2]], REDIS_PORT, "Redis URL")


def kafka_endpoints(servers: str) -> list[Endpoint]:
    """`host:port[,host:port...]`, each optionally `LISTENER://host:port`."""
    return _endpoints([item.rpartition("://")[2] for item in servers.split(",")], KAFKA_PORT, "Kafka")


def postgres_endpoints(url: str) -> list[Endpoint]:
    """A libpq URL, with libpq's `host1:port1,host2:port2` list of hosts (a primary and its standbys)."""
    hosts = urlsplit(url).netloc.rpartition("@")[2]
    return _endpoints(hosts.split(","), POSTGRES_PORT, "database URL")


def service_namespace(host: str) -> str | None:
    """The namespace of a cluster Service's DNS name (`svc.ns.svc`, `pod.svc.ns.svc.cluster.local`).

    Only the `.svc` and `.svc.cluster.local` endings: under another cluster domain a name is taken as
    any DNS name (the port alone), never guessed.
    """
    labels = host.rstrip(".").lower().split(".")
    for suffix in (["svc"], ["svc", "cluster", "local"]):
        service_labels = len(labels) - len(suffix)
        if service_labels >= 2 and labels[service_labels:] == suffix:
            return labels[service_labels - 1]
    return None


def egress_rule(endpoint: Endpoint) -> dict[str, Any]:
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": endpoint.port}]}
    try:
        address = ipaddress.ip_address(endpoint.host)
    except ValueError:
        namespace = service_namespace(endpoint.host)
        if namespace is None:
            return rule  # a DNS name outside the cluster: the port alone (see the module's docstring)
        return {"to": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME: namespace}}}], **rule}
    return {"to": [{"ipBlock": {"cidr": f"{address}/{address.max_prefixlen}"}}], **rule}


def _egress(endpoints: list[Endpoint], extra: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [copy.deepcopy(DNS_RULE)]
    for rule in [*map(egress_rule, endpoints), *extra]:
        if rule not in rules:  # the same middleware named twice
            rules.append(rule)
    return rules


def _pods(ref: SaleRef, component: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": selector(ref, component)}}


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def dedicated_broker_rule(ref: SaleRef) -> dict[str, Any]:
    """Egress to the sale's own broker pod (its labels, not an address: the pod's address changes)."""
    return {"to": [_pods(ref, "kafka")], "ports": _tcp(queue.BROKER_PORT)}


def broker_policy(ref: SaleRef, config: OperatorConfig) -> dict[str, Any]:
    operator = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": config.namespace}}}
    ingress = [
        {"from": [_pods(ref, "gateway"), _pods(ref, "consumer"), operator], "ports": _tcp(queue.BROKER_PORT)},
        {"from": [_pods(ref, "kafka")], "ports": _tcp(queue.CONTROLLER_PORT)},
    ]
    itself = {"to": [_pods(ref, "kafka")], "ports": _tcp(queue.BROKER_PORT, queue.CONTROLLER_PORT)}
    return _policy(ref, "allow-kafka", selector(ref, "kafka"), ingress, [copy.deepcopy(DNS_RULE), itself])


def _policy(
    ref: SaleRef, name: str, pods: dict[str, str], ingress: list[Any], egress: list[Any]
) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": {"matchLabels": pods}, "policyTypes": ["Ingress", "Egress"]}
    # No rule at all (the default deny): the keys are left out, as the API server stores them.
    spec.update({key: rules for key, rules in (("ingress", ingress), ("egress", egress)) if rules})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(ref, child_name(ref, name), "network"),
        "spec": spec,
    }


def _from_anywhere(port: int) -> dict[str, Any]:
    return {"ports": _tcp(port)}  # no `from`: any source, this port only


def _scrapes(config: OperatorConfig, port: int) -> dict[str, Any]:
    return {"from": copy.deepcopy(config.metrics_scrapers), "ports": _tcp(port)}


def network_policies(
    ref: SaleRef, config: OperatorConfig, mode: QueueMode = "shared"
) -> list[dict[str, Any]]:
    dedicated = mode == "dedicated"
    redis = redis_endpoints(config.redis_url)
    kafka = [] if dedicated else kafka_endpoints(config.kafka_bootstrap_servers)
    broker = [dedicated_broker_rule(ref)] if dedicated else []
    # Each process reaches PostgreSQL where its own login points (the owner's URL is the operator's).
    gateway_postgres = postgres_endpoints(config.gateway_database_url.get_secret_value())
    consumer_postgres = postgres_endpoints(config.consumer_database_url.get_secret_value())
    policies = [
        _policy(ref, "default-deny", sale_pods(ref), [], []),
        _policy(
            ref,
            "allow-gateway",
            selector(ref, "gateway"),
            [_from_anywhere(GATEWAY_PORT), _scrapes(config, ADMIN_PORT)],
            _egress(redis + kafka + gateway_postgres, broker),
        ),
        _policy(
            ref,
            "allow-consumer",
            selector(ref, "consumer"),
            [_scrapes(config, METRICS_PORT)],
            _egress(redis + kafka + consumer_postgres, broker),
        ),
    ]
    if dedicated:
        policies.append(broker_policy(ref, config))
    return policies
