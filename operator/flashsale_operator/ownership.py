"""Which existing objects the operator may write: only its own children (pure).

A sale's children are named after the sale (`<sale>-gateway`, `<sale>-secrets`, ...), so a name may
already be taken in the namespace - the shop's own Service, another tool's Secret, the children of an
earlier FlashSale of the same name that the garbage collector has not removed yet. Server-side apply
with force would silently take such an object over. So the operator writes an existing child only if
it is its own, which means exactly: the object carries an ownerReference to THIS FlashSale (kind
`FlashSale`, group `flashsale.dev`, this sale's uid) with `controller: true` - the reference the
operator renders on every child it creates (render_meta.owner_reference). Anything else is a
Conflict: the object is left untouched, the sale says which object in `ChildrenReady=False`
(reason `Conflict`) and a Warning Event, and the operator tries again later, so removing (or
renaming) the foreign object lets the sale go on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from flashsale_operator.spec import GROUP, KIND

RETRY_SECONDS: Final = 10.0  # how soon a refused sale looks again (kopf retries the handler)
# Whose a Secret is instead stays unknown: the operator never reads one.
UNREAD_HOLDER: Final = "no controller reference to this sale"


@dataclass(frozen=True)
class Conflict:
    kind: str
    name: str
    holder: str  # who the object belongs to instead, in words

    def __str__(self) -> str:
        return f"{self.kind} {self.name} already exists and is not this sale's ({self.holder})"


def is_own(owner_references: Sequence[Mapping[str, Any]], uid: str) -> bool:
    return any(
        ref.get("uid") == uid
        and ref.get("controller") is True
        and ref.get("kind") == KIND
        and str(ref.get("apiVersion", "")).split("/")[0] == GROUP
        for ref in owner_references
    )


def conflict(
    manifest: Mapping[str, Any], owner_references: Sequence[Mapping[str, Any]] | None, uid: str
) -> Conflict | None:
    """None if the child may be written: it does not exist yet (`owner_references` None) or is own."""
    if owner_references is None or is_own(owner_references, uid):
        return None
    return Conflict(manifest["kind"], manifest["metadata"]["name"], _holder(owner_references))


def owner_tests(uid: str) -> list[dict[str, Any]]:
    """JSON Patch `test` operations that hold only on a child of this sale: the reference the operator
    renders first, with this uid and as controller. Put before the writes, they make a patch fail
    (422, nothing written) on anything else - for the Secrets, which the operator may not read."""
    first = "/metadata/ownerReferences/0"
    return [
        {"op": "test", "path": f"{first}/uid", "value": uid},
        {"op": "test", "path": f"{first}/controller", "value": True},
    ]


def _holder(owner_references: Sequence[Mapping[str, Any]]) -> str:
    controller = next((r for r in owner_references if r.get("controller")), None)
    if controller is not None:
        return f"controlled by {controller.get('kind')} {controller.get('name')} uid {controller.get('uid')}"
    if owner_references:
        return "not controlled by this sale"
    return "no owner"
