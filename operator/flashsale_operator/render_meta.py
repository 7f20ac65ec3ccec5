"""Who a child belongs to: the sale's reference, owner reference, labels and metadata (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from flashsale_operator.spec import GROUP, KIND, VERSION

PART_OF: Final = "flashsale"
MANAGED_BY: Final = "flashsale-operator"
SALE_LABEL: Final = "flashsale.dev/sale"
# A Service name is a DNS-1035 label (63 characters) and `<sale>-gateway` is the longest such name;
# label values (instance, sale) are capped at 63 too. Validation refuses longer sale names.
MAX_SALE_NAME_LENGTH: Final = 63 - len("-gateway")


@dataclass(frozen=True)
class SaleRef:
    """The FlashSale a child belongs to."""

    name: str
    namespace: str
    uid: str


def owner_reference(ref: SaleRef) -> dict[str, Any]:
    # controller: the sale alone manages it; blockOwnerDeletion: foreground deletion waits for it.
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": ref.name,
        "uid": ref.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def labels(ref: SaleRef, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": f"flashsale-{component}",
        "app.kubernetes.io/instance": ref.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        SALE_LABEL: ref.name,
    }


def selector(ref: SaleRef, component: str) -> dict[str, str]:
    """The pods of one component of one sale; a Deployment's selector is immutable, so keep it small."""
    return {"app.kubernetes.io/name": f"flashsale-{component}", "app.kubernetes.io/instance": ref.name}


def sale_pods(ref: SaleRef) -> dict[str, str]:
    """Every pod of the sale, whatever its component (part-of: not another app's `instance` label)."""
    return {"app.kubernetes.io/instance": ref.name, "app.kubernetes.io/part-of": PART_OF}


def metadata(ref: SaleRef, name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": ref.namespace,
        "labels": labels(ref, component),
        "ownerReferences": [owner_reference(ref)],
    }


def child_name(ref: SaleRef, suffix: str) -> str:
    return f"{ref.name}-{suffix}"
