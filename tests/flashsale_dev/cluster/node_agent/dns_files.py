"""A pod's /etc/resolv.conf and /etc/hosts, rendered as the kubelet renders them (pure functions).

The node agent bind-mounts both into each container's private mount namespace (mount_ns.py), so a
pod resolves Service names through the cluster's DNS while the host's own files stay untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CLUSTER_DOMAIN = "cluster.local"
MAX_NAMESERVERS = 3  # glibc reads no more, and the kubelet drops the rest
MAX_SEARCH = 32  # the kubelet's limit since 1.28 (MaxDNSSearchPaths)


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def parse_resolv_conf(text: str) -> ResolvConf:
    """The host's resolv.conf: its nameservers, search domains (`domain` too) and options."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = fields[1:]  # the last of these lines wins, as in glibc
        elif fields[0] == "options":
            options.extend(fields[1:])
    return ResolvConf(tuple(nameservers), tuple(searches), tuple(options))


def _unique(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _merge_options(base: Sequence[str], extra: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """dnsConfig.options override the base options of the same name (`ndots:5` -> `ndots:2`)."""
    merged = {option.split(":", 1)[0]: option for option in base}
    for option in extra:
        name, value = option.get("name", ""), option.get("value")
        if name:
            merged[name] = f"{name}:{value}" if value is not None else name
    return tuple(merged.values())


def pod_resolv_conf(pod: Mapping[str, Any], cluster_dns: str, host: ResolvConf) -> ResolvConf:
    """What the kubelet gives a pod for its dnsPolicy (ClusterFirst by default), with its dnsConfig."""
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        own = (f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN)
        base = ResolvConf((cluster_dns,), own + host.searches, ("ndots:5",))
    elif policy == "Default":  # the node's own resolver
        base = host
    else:  # "None": only what dnsConfig says
        base = ResolvConf()
    config = spec.get("dnsConfig") or {}
    return ResolvConf(
        _unique([*base.nameservers, *(config.get("nameservers") or [])])[:MAX_NAMESERVERS],
        _unique([*base.searches, *(config.get("searches") or [])])[:MAX_SEARCH],
        _merge_options(base.options, config.get("options") or []),
    )


def render_resolv_conf(conf: ResolvConf) -> str:
    lines = []
    if conf.searches:
        lines.append("search " + " ".join(conf.searches))
    lines.extend(f"nameserver {server}" for server in conf.nameservers)
    if conf.options:
        lines.append("options " + " ".join(conf.options))
    return "\n".join(lines) + "\n"


def pod_hostname(pod: Mapping[str, Any]) -> str:
    """spec.hostname, else the pod's name, cut to a DNS label's 63 characters as the kubelet does."""
    spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
    return str(spec.get("hostname") or meta.get("name", ""))[:63].rstrip("-.")


def render_hosts(pod: Mapping[str, Any], pod_ip: str) -> str:
    """The kubelet's managed hosts file: localhost, the pod's own name(s), then spec.hostAliases."""
    spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
    hostname = pod_hostname(pod)
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    subdomain = spec.get("subdomain")
    if subdomain:
        domain = f"{subdomain}.{meta.get('namespace', 'default')}.svc.{CLUSTER_DOMAIN}"
        lines.append(f"{pod_ip}\t{hostname}.{domain}\t{hostname}")
    else:
        lines.append(f"{pod_ip}\t{hostname}")
    aliases = spec.get("hostAliases") or []
    if aliases:
        lines.append("")
        lines.append("# Entries added by HostAliases.")
        lines.extend(f"{a.get('ip', '')}\t{chr(9).join(a.get('hostnames') or [])}" for a in aliases)
    return "\n".join(lines) + "\n"
