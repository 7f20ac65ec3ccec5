"""The cluster's DNS: CoreDNS's Corefile and the hosts file it serves headless names from (pure).

CoreDNS's kubernetes plugin answers `svc.ns.svc.cluster.local` for ClusterIP Services from the API.
What it would take from EndpointSlices - headless Services' pod addresses and StatefulSet pods'
own names - it cannot have here (slices refuse 127.x addresses), so the service proxy writes those
into a hosts file from the same endpoint computation it routes by, and the hosts plugin, placed
before the kubernetes plugin, answers them and falls through for everything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from flashsale_dev.cluster.endpoints import Obj, is_headless, key, pod_hostname, selected_pods

DOMAIN = "cluster.local"
DNS_SERVICE = ("kube-system", "kube-dns")
DNS_OFFSET = 10  # kube-dns gets <range>.0.10, as kubeadm gives it 10.96.0.10
TTL = 5  # seconds, the kubernetes plugin's default: names follow pods within a few seconds


def render_corefile(listen_ip: str, kubeconfig: Path, hosts_file: Path, ready_port: int) -> str:
    """Two server blocks on `listen_ip`:53 - cluster.local from hosts then the API; the rest
    forwarded to the host's own resolvers, as a pod with dnsPolicy ClusterFirst would see them."""
    return f"""\
{DOMAIN}:53 {{
    bind {listen_ip}
    errors
    ready 127.0.0.1:{ready_port}
    hosts {hosts_file} {{
        ttl {TTL}
        reload 1s
        fallthrough
    }}
    kubernetes {DOMAIN} {{
        kubeconfig {kubeconfig}
        ttl {TTL}
    }}
}}

.:53 {{
    bind {listen_ip}
    errors
    forward . /etc/resolv.conf
}}
"""


def hosts_entries(services: Iterable[Obj], pods: Iterable[Obj]) -> list[tuple[str, str]]:
    """(address, name) for every headless Service's serving pods and their own hostnames."""
    pods = list(pods)
    entries = []
    for service in sorted(services, key=key):
        if not is_headless(service):
            continue
        namespace, name = key(service)
        fqdn = f"{name}.{namespace}.svc.{DOMAIN}"
        for pod in selected_pods(service, pods):
            ip = pod["status"]["podIP"]
            entries.append((ip, fqdn))
            hostname = pod_hostname(pod, service)
            if hostname:
                entries.append((ip, f"{hostname}.{fqdn}"))
    return entries


def render_hosts(services: Iterable[Obj], pods: Iterable[Obj]) -> str:
    lines = [f"{ip} {name}" for ip, name in hosts_entries(services, pods)]
    header = "# written by flashsale_dev.cluster.service_proxy: headless Services of this cluster\n"
    return header + "".join(f"{line}\n" for line in lines)
