"""The operator's journey, one function every cluster tier runs: install the operator, apply a
FlashSale (in a namespace enforcing the `restricted` Pod Security Standard), see it Live, buy its
stock with tokens, find the orders, delete it and see its children gone.

The e2e tier runs it on the local cluster (tests/e2e/test_operator_sale.py), the kind tier on a kind
cluster with the built images (tests/kind/). A `JourneyCluster` is what differs between them: how the
operator is installed, how the test reaches a sale's gateway and the orders' database. A tier adds
its own checks with `when_ready` and `when_sold_out`; what stays after the journey (Redis keys, the
topic, the shop's pods) the caller checks against its own middleware.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import kubernetes

from flashsale_dev.flashsales import FlashSales, sale_spec
from flashsale_dev.operator_install import InstalledOperator
from flashsale_dev.shoppers import buy_with_tokens
from flashsale_dev.waiting import wait_for

STOCK = 20
SHOPPERS = 40  # twice the stock: half of them are told it is sold out
GATEWAYS = 2  # the spec's default replicas
PHASES_OF_A_SELL_OUT = ["Scheduled", "Prewarming", "Ready", "Live", "SoldOut"]
# The sale's namespace enforces the strictest Pod Security Standard: the API server admits the sale's
# pods only because the operator renders them hardened (render_security.py).
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


class JourneyCluster(Protocol):
    """What the journey needs from a cluster beyond its API."""

    @property
    def api(self) -> kubernetes.client.ApiClient: ...

    @property
    def sale_overrides(self) -> Mapping[str, Any]:
        """Spec fields this cluster needs (kind: a NodePort Service, no load balancer there)."""
        ...

    def install_operator(self) -> InstalledOperator:
        """Installs the operator from manifests/ (or returns the one the cluster already runs)."""
        ...

    def gateway(self, namespace: str, service: str, status_url: str) -> AbstractContextManager[str]:
        """A base URL the test reaches the sale's gateway Service at, while the context is open."""
        ...

    def count_orders(self, sale_uid: str) -> int:
        """The sale's orders in the platform's PostgreSQL."""
        ...


@dataclass(frozen=True)
class SaleSeen:
    """The journey's sale, as a tier's own checks get it."""

    namespace: str
    name: str
    uid: str
    operator: InstalledOperator
    gateway_url: str  # where the test reaches it (the journey's `JourneyCluster.gateway`)


Check = Callable[[SaleSeen], None]


def _nothing(_: SaleSeen) -> None:
    return None


def mint_tokens(users: list[str], key: str, sale: str) -> list[str]:
    """Tokens from the `flashsale token` console script, as the shop's login service would issue them
    with the platform's key (`key`) for the sale `namespace/name`."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("flashsale")), "token", "--sale", sale, "--users-file", "-"],
        input="\n".join(users),
        env={"FLASHSALE_USER_TOKEN_KEY": key, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.split()


def children_gone(api: kubernetes.client.ApiClient, namespace: str) -> bool:
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
    return (
        not core.list_namespaced_pod(namespace).items
        and not apps.list_namespaced_deployment(namespace).items
        and not apps.list_namespaced_stateful_set(namespace).items
        and not core.list_namespaced_service(namespace).items
    )


def run_operator_journey(
    cluster: JourneyCluster,
    namespace: str,
    *,
    name: str = "drop",
    when_ready: Check = _nothing,
    when_sold_out: Check = _nothing,
) -> SaleSeen:
    """The journey in `namespace` (which the caller made and removes); returns the sale it ran."""
    operator = cluster.install_operator()
    kubernetes.client.CoreV1Api(cluster.api).patch_namespace(namespace, {"metadata": {"labels": RESTRICTED}})
    sales = FlashSales(cluster.api, namespace)
    spec = sale_spec(stock=STOCK, starts_in=10, prewarm_seconds=5, **cluster.sale_overrides)
    created = sales.create(name, spec)
    status = sales.wait_status(
        name,
        lambda s: (s.get("gateway") or {}).get("readyReplicas") == GATEWAYS and bool(s["gateway"].get("url")),
        what=f"{GATEWAYS} gateway replicas Ready behind an address",
    )
    # The summary `kubectl wait --for=condition=Ready` waits on: the gate built, the gateways Ready.
    sales.wait_condition(name, "Ready", "True", "AllReady")
    with cluster.gateway(namespace, f"{name}-gateway", status["gateway"]["url"]) as url:
        sale = SaleSeen(namespace, name, created["metadata"]["uid"], operator, url)
        when_ready(sale)

        live = sales.wait_phase(name, "Live")
        assert live["startedAt"] >= created["spec"]["schedule"]["startsAt"][:19]
        order_path = wait_for(
            lambda: httpx.get(f"{url}/api/status", timeout=30).json().get("orderPath"),
            timeout=60,
            what="the order path published",
        )
        users = [f"shopper-{i}" for i in range(SHOPPERS)]
        minted = mint_tokens(users, operator.user_token_key, f"{namespace}/{name}")
        answers = asyncio.run(buy_with_tokens(url, minted, order_path))
        assert answers.count(202) == STOCK
        assert set(answers) <= {202, 409, 410}

        # The tick that sees the last order may still count it as reserved too (Redis, then
        # PostgreSQL, are read one after the other; status.py): the next one settles.
        settled = {"total": STOCK, "remaining": 0, "reserved": 0, "ordered": STOCK, "paid": 0, "expired": 0}
        sales.wait_status(
            name,
            lambda s: s.get("phase") == "SoldOut" and s.get("stock") == settled,
            what=f"sold out with every unit an order: {settled}",
        )
        sales.wait_event_reasons(name, PHASES_OF_A_SELL_OUT, PHASES_OF_A_SELL_OUT)
        when_sold_out(sale)

    # Deleting it closes the sale and removes everything but the orders.
    sales.delete(name)
    wait_for(lambda: not sales.exists(name), timeout=180, what="the FlashSale gone (finalizer done)")
    wait_for(lambda: children_gone(cluster.api, namespace), timeout=180, what="every child garbage-collected")
    assert cluster.count_orders(sale.uid) == STOCK
    return sale
