"""A ServiceAccount with a narrow Role, as the RBAC tests give one: it may get and list pods, nothing else."""

from __future__ import annotations

from typing import Any

import kubernetes


def pod_reader(kube_api: Any, namespace: str, account: str = "reader") -> str:
    """Creates ServiceAccount `account` bound to a Role that gets and lists pods; returns its name."""
    core, rbac = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.RbacAuthorizationV1Api(kube_api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
    })  # fmt: skip
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": f"{account}-reads-pods"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    })  # fmt: skip
    return account
