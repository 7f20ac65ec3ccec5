"""A real Kubernetes control plane on loopback: etcd, kube-apiserver (TLS, RBAC, ServiceAccount
tokens), kube-controller-manager, kube-scheduler, kwok for simulated nodes, the node agent for
nodes whose pods really run, and the Service network (service proxy, CoreDNS, nginx edge)."""

from flashsale_dev.cluster.launcher import LocalCluster

__all__ = ["LocalCluster"]
