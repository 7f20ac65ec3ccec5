"""On a kind cluster, with the images `make images` built, the operator takes a FlashSale through the
same journey as on the local cluster: installed from manifests/, the sale applied, Live, its stock
sold to shoppers with tokens, its orders in PostgreSQL, deleted without a trace. There, unlike on the
local node agent, the pods really run as the images' non-root user under their security contexts."""

from __future__ import annotations

import kubernetes
import pytest

from flashsale_dev.journey import SaleSeen, run_operator_journey
from flashsale_operator.render_security import RUN_AS_USER
from kind.kind_platform import KindJourneyCluster

pytestmark = pytest.mark.kind


def test_a_flashsale_goes_live_sells_its_stock_and_is_removed_on_kind_with_the_built_images(
    kind_journey_cluster: KindJourneyCluster, kind_namespace: str
) -> None:
    def runs_as_the_images_user(sale: SaleSeen) -> None:
        core = kubernetes.client.CoreV1Api(kind_journey_cluster.api)
        selector = f"app.kubernetes.io/instance={sale.name}"
        for pod in core.list_namespaced_pod(sale.namespace, label_selector=selector).items:
            uid = kind_journey_cluster.kubectl(
                "exec", pod.metadata.name, "-n", sale.namespace, "--",
                "python3", "-c", "import os; print(os.getuid(), os.getgid())",
            )  # fmt: skip
            assert uid.split() == [str(RUN_AS_USER), str(RUN_AS_USER)], pod.metadata.name

    run_operator_journey(kind_journey_cluster, kind_namespace, when_ready=runs_as_the_images_user)
