"""Kubeconfig files with embedded credentials (they work for kubectl, the kubernetes client and kopf)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from flashsale_dev.cluster.pki import KeyPair


def render_kubeconfig(server: str, ca_cert: bytes, user: str, credentials: dict[str, str]) -> dict[str, Any]:
    """A one-cluster, one-user kubeconfig; `credentials` is the user entry (cert data or token)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "flashsale-local", "cluster": {
            "server": server, "certificate-authority-data": _b64(ca_cert)}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "flashsale-local", "context": {"cluster": "flashsale-local", "user": user}}],
        "current-context": "flashsale-local",
    }  # fmt: skip


def write_cert_kubeconfig(path: Path, server: str, ca: Path, client: KeyPair, user: str) -> Path:
    credentials = {
        "client-certificate-data": _b64(client.cert.read_bytes()),
        "client-key-data": _b64(client.key.read_bytes()),
    }
    return _write(path, render_kubeconfig(server, ca.read_bytes(), user, credentials))


def write_token_kubeconfig(path: Path, server: str, ca: Path, token: str, user: str) -> Path:
    return _write(path, render_kubeconfig(server, ca.read_bytes(), user, {"token": token}))


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
