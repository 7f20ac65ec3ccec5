"""The kind tier's platform: a kind cluster (pytest-kind) running the built images, its middleware
from official images inside it (middleware.yaml), and the operator from manifests/ - the operator
journey's `JourneyCluster` (flashsale_dev.journey).

Images: `make images` writes OCI archives (~/.cache/flashsale/images/*.oci.tar, each naming its
references in its index, `org.opencontainers.image.ref.name`). `kind load image-archive` takes only
docker-archive tars, so each archive goes through the Docker engine this tier runs on: `docker load`
(Docker 25 and later read an OCI archive, naming each image after its `io.containerd.image.name`),
then pytest-kind's `load_docker_image` (`kind load docker-image`).

The test reaches a sale's gateway at its NodePort on a node's address (the gateway listens on its
pod's address only, so `kubectl port-forward`, which dials the pod's loopback, cannot reach it), and
PostgreSQL through `kubectl port-forward` (migrations, logins, the orders).
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Final

import kubernetes
import psycopg
from pytest_kind import KindCluster  # type: ignore[import-untyped]

from flashsale_dev.database_roles import CONSUMER_LOGIN, GATEWAY_LOGIN, DatabaseLogins, create_login
from flashsale_dev.operator_install import (
    InstalledOperator,
    apply_operator,
    manifest_documents,
    new_payment_key,
    new_user_token_key,
    operator_configuration,
)
from flashsale_dev.paths import cache_dir
from flashsale_sale import __version__, db

HERE: Final = Path(__file__).parent
CLUSTER_CONFIG: Final = HERE / "kind-cluster.yaml"
MIDDLEWARE: Final = HERE / "middleware.yaml"
MIDDLEWARE_NAMESPACE: Final = "flashsale-middleware"
OWNER_PASSWORD: Final = "kind-tier-owner"  # middleware.yaml's: a throwaway cluster's
OWNER_URL: Final = (
    f"postgresql://postgres:{OWNER_PASSWORD}@postgres.{MIDDLEWARE_NAMESPACE}.svc:5432/flashsale"
)
IMAGES: Final = tuple(
    f"flashsale/{name}:{__version__}" for name in ("operator", "gateway", "consumer", "kafka")
)
REF_NAME: Final = "org.opencontainers.image.ref.name"
SALE_POOL_TAINT: Final = "dedicated=flashsale:NoSchedule"
WAIT: Final = "--timeout=600s"  # image pulls of the middleware on a cold Docker


def image_archives(directory: Path) -> dict[str, Path]:
    """Reference -> the OCI archive holding it, from each archive's index."""
    found: dict[str, Path] = {}
    for archive in sorted(directory.glob("*.oci.tar")):
        with tarfile.open(archive) as tar:
            member = tar.extractfile("index.json")
            index = json.load(member) if member else {}
        for manifest in index.get("manifests", []):
            ref = (manifest.get("annotations") or {}).get(REF_NAME)
            if ref:
                found[ref] = archive
    return found


def load_images(kind: KindCluster, refs: tuple[str, ...] = IMAGES) -> None:
    archives = image_archives(cache_dir() / "images")
    missing = [ref for ref in refs if ref not in archives]
    if missing:
        raise RuntimeError(f"images not built: {missing}: run `make images`")
    for archive in sorted({archives[ref] for ref in refs}):
        subprocess.run(["docker", "load", "--input", str(archive)], check=True, timeout=600)
    for ref in refs:
        kind.load_docker_image(ref)


class KindJourneyCluster:
    """A kind cluster as the operator journey sees it."""

    sale_overrides: Mapping[str, Any] = {"gateway": {"serviceType": "NodePort"}}  # no load balancer

    def __init__(self, kind: KindCluster) -> None:
        self.kind = kind
        self.api = kubernetes.config.new_client_from_config(str(kind.kubeconfig_path))
        self._operator: InstalledOperator | None = None

    def kubectl(self, *args: str, input_text: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [str(self.kind.kubectl_path), *args],
            env={"KUBECONFIG": str(self.kind.kubeconfig_path), "PATH": "/usr/bin:/bin"},
            input=input_text,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def prepare_pools(self) -> None:
        """The system pool (operator, middleware) and the tainted pool only sales tolerate."""
        system, sales = f"{self.kind.name}-worker", f"{self.kind.name}-worker2"
        self.kubectl("label", "node", system, "pool=system", "--overwrite")
        self.kubectl("label", "node", sales, "pool=flashsale", "--overwrite")
        self.kubectl("taint", "node", sales, SALE_POOL_TAINT, "--overwrite")

    def start_middleware(self) -> None:
        self.kubectl("apply", "-f", str(MIDDLEWARE))
        for name in ("redis", "postgres", "kafka"):
            self.kubectl("rollout", "status", f"deployment/{name}", "-n", MIDDLEWARE_NAMESPACE, WAIT)

    @contextmanager
    def owner_connection(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """PostgreSQL as the schema's owner, through a port-forward of its Service."""
        with self.kind.port_forward("service/postgres", 5432, "-n", MIDDLEWARE_NAMESPACE) as port:
            url = f"postgresql://postgres:{OWNER_PASSWORD}@127.0.0.1:{port}/flashsale"
            with psycopg.connect(url, connect_timeout=30) as conn:
                yield conn

    def database_logins(self) -> DatabaseLogins:
        """Migrates as the owner and creates the two logins; their URLs name the in-cluster Service."""
        with self.owner_connection() as conn:
            db.migrate(conn)
            gateway = create_login(conn, owner_url=OWNER_URL, login=GATEWAY_LOGIN, role=db.GATEWAY_ROLE)
            consumer = create_login(conn, owner_url=OWNER_URL, login=CONSUMER_LOGIN, role=db.CONSUMER_ROLE)
        return DatabaseLogins(gateway, consumer)

    def install_operator(self) -> InstalledOperator:
        if self._operator is not None:
            return self._operator
        self.prepare_pools()
        self.start_middleware()
        key, payment_key = new_user_token_key(), new_payment_key()

        def generate() -> list[dict[str, Any]]:
            return operator_configuration(
                redis_url=f"redis://redis.{MIDDLEWARE_NAMESPACE}.svc:6379/0",
                kafka_bootstrap_servers=f"kafka.{MIDDLEWARE_NAMESPACE}.svc:9092",
                owner_database_url=OWNER_URL,
                logins=self.database_logins(),
                user_token_key=key,
                payment_key=payment_key,
            )

        apply_operator(self.kubectl, self.api, generate, manifest_documents("operator.yaml"), timeout=600)
        self._operator = InstalledOperator(key, payment_key)
        return self._operator

    def gateway(self, namespace: str, service: str, status_url: str) -> AbstractContextManager[str]:
        return self._node_port(namespace, service)

    @contextmanager
    def _node_port(self, namespace: str, service: str) -> Iterator[str]:
        """The Service's NodePort on the system node's address (kind's nodes are reachable from the
        Docker host on Linux)."""
        core = kubernetes.client.CoreV1Api(self.api)
        port = core.read_namespaced_service(service, namespace).spec.ports[0].node_port
        node = core.read_node(f"{self.kind.name}-worker")
        address = next(a.address for a in node.status.addresses if a.type == "InternalIP")
        yield f"http://{address}:{port}"

    def count_orders(self, sale_uid: str) -> int:
        with self.owner_connection() as conn:
            found = conn.execute("SELECT count(*) FROM orders WHERE sale_id = %s", (sale_uid,)).fetchone()
        return int(found[0]) if found else 0
