"""The operator writes an existing object only if it is its own child: an ownerReference to THIS
FlashSale (its uid) as controller - what it renders on every child. Anything else is a Conflict that
names the object."""

from __future__ import annotations

from typing import Any

import pytest

from flashsale_operator.ownership import conflict, is_own, owner_tests
from flashsale_operator.render import SaleRef, owner_reference

pytestmark = pytest.mark.unit

SALE = SaleRef(name="summer-drop", namespace="shop", uid="4f0c1f7e-0000-4000-8000-000000000001")
SERVICE = {"kind": "Service", "metadata": {"name": "summer-drop-gateway", "namespace": "shop"}}


def test_a_child_the_operator_rendered_for_this_sale_is_its_own() -> None:
    assert is_own([owner_reference(SALE)], SALE.uid)
    assert conflict(SERVICE, [owner_reference(SALE)], SALE.uid) is None
    assert conflict(SERVICE, None, SALE.uid) is None  # not there yet: the operator may create it


@pytest.mark.parametrize(
    ("owners", "holder"),
    [
        ([], "no owner"),
        # An earlier FlashSale of the same name, its children not yet garbage-collected.
        ([{**owner_reference(SALE), "uid": "older"}], "controlled by FlashSale summer-drop uid older"),
        ([{**owner_reference(SALE), "controller": False}], "not controlled by this sale"),
        ([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop", "uid": SALE.uid,
           "controller": True}], "controlled by Deployment shop"),
    ],
)  # fmt: skip
def test_anything_else_is_a_conflict_naming_the_object(owners: list[dict[str, Any]], holder: str) -> None:
    found = conflict(SERVICE, owners, SALE.uid)
    assert found is not None
    assert str(found).startswith("Service summer-drop-gateway already exists and is not this sale's (")
    assert holder in str(found)


def test_the_secret_patch_holds_only_on_this_sales_own_reference() -> None:
    assert owner_tests(SALE.uid) == [
        {"op": "test", "path": "/metadata/ownerReferences/0/uid", "value": SALE.uid},
        {"op": "test", "path": "/metadata/ownerReferences/0/controller", "value": True},
    ]
    assert owner_reference(SALE)["uid"] == SALE.uid  # the reference it tests is the one rendered first
