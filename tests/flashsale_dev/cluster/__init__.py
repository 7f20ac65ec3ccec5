"""A real Kubernetes control plane on loopback: etcd, kube-apiserver (TLS, RBAC, ServiceAccount
tokens), kube-controller-manager, kube-scheduler, kwok for simulated nodes and the node agent for
nodes whose pods really run."""

from flashsale_dev.cluster.launcher import LocalCluster

__all__ = ["LocalCluster"]
