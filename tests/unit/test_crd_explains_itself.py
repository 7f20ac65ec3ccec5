"""manifests/crd.yaml explains itself: `kubectl explain flashsale.<path>` has words for every field, and
`kubectl get fsale` answers an operator's first questions (with `-o wide`, how the sale is going)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from flashsale_dev.operator_crd import CRD_FILE

pytestmark = pytest.mark.unit

VERSION = yaml.safe_load(CRD_FILE.read_text())["spec"]["versions"][0]


def schema_nodes(node: dict[str, Any], path: str = "flashsale") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node `kubectl explain` can show: properties, array items, map values."""
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from schema_nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}{{}}")


def test_every_field_of_the_schema_has_a_description() -> None:
    nodes = list(schema_nodes(VERSION["schema"]["openAPIV3Schema"]))
    undescribed = [path for path, node in nodes if not str(node.get("description") or "").strip()]
    # The API server refuses a description there; it shows ObjectMeta's own (the cluster test checks).
    undescribed.remove("flashsale.metadata")
    assert len(nodes) >= 83  # the walk reaches every field (83 when this test was written, plus items)
    assert undescribed == []


def test_the_status_fields_keep_their_names() -> None:
    status = VERSION["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert set(status) == {
        "phase", "observedGeneration", "prewarmedAt", "phaseSince", "startedAt", "pausedAt", "endedAt",
        "stock", "gateway", "consumers", "drain", "flag", "conditions",
    }  # fmt: skip
    units = {"total", "remaining", "reserved", "ordered", "paid", "expired"}
    assert set(status["stock"]["properties"]) == units


def test_kubectl_get_shows_the_first_questions_and_wide_shows_how_the_sale_goes() -> None:
    columns = [(c["name"], c["jsonPath"], c.get("priority", 0)) for c in VERSION["additionalPrinterColumns"]]
    assert [(name, path) for name, path, priority in columns if priority == 0] == [
        ("Phase", ".status.phase"),
        ("Stock", ".spec.stock"),
        ("Remaining", ".status.stock.remaining"),
        ("Starts", ".spec.schedule.startsAt"),
        ("Age", ".metadata.creationTimestamp"),
    ]
    assert [(name, path) for name, path, priority in columns if priority == 1] == [
        ("URL", ".status.gateway.url"),
        ("Ordered", ".status.stock.ordered"),
        ("Paid", ".status.stock.paid"),
        ("Consumers", ".status.consumers.replicas"),
        ("Lag", ".status.consumers.lag"),
    ]
