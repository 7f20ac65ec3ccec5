"""FlashSale resources for tests and the demo: specs on a seconds-long schedule, and a typed handle.

Everything waits on conditions (the status, Events) with generous deadlines, never on sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes
import yaml
from kubernetes.client.exceptions import ApiException

from flashsale_dev.paths import REPO_ROOT
from flashsale_dev.waiting import wait_for
from flashsale_operator.spec import GROUP, KIND, PLURAL, VERSION


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


EXAMPLE = REPO_ROOT / "examples" / "flashsale.yaml"


def example_sale(starts_in: float = 60.0, prewarm_seconds: int = 10, lasts: float = 3600.0) -> dict[str, Any]:
    """examples/flashsale.yaml as it is, but starting `starts_in` seconds from now."""
    sale: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    starts = datetime.now(UTC) + timedelta(seconds=starts_in)
    sale["spec"]["schedule"] = {
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(starts + timedelta(seconds=lasts)),
        "prewarmSeconds": prewarm_seconds,
    }
    return sale


def sale_spec(
    *,
    stock: int = 20,
    starts_in: float = 8.0,
    lasts: float = 600.0,
    prewarm_seconds: int = 3,
    per_user_limit: int = 1,
    payment_timeout_seconds: int = 900,
    **extra: Any,
) -> dict[str, Any]:
    """A complete spec whose sale starts `starts_in` seconds from now (prewarm a few seconds before)."""
    starts = datetime.now(UTC) + timedelta(seconds=starts_in)
    return {
        "product": {"sku": "KETTLE-1", "name": "Copper kettle", "price": "49.00", "currency": "EUR"},
        "stock": stock,
        "perUserLimit": per_user_limit,
        "schedule": {
            "startsAt": rfc3339(starts),
            "endsAt": rfc3339(starts + timedelta(seconds=lasts)),
            "prewarmSeconds": prewarm_seconds,
        },
        "paymentTimeoutSeconds": payment_timeout_seconds,
        **extra,
    }


class FlashSales:
    """The FlashSales of one namespace, through the API as the platform team's kubectl would."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.core = kubernetes.client.CoreV1Api(api)

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": spec}
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )
        return created

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return found

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def patch_spec(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """A merge patch of the spec; the object as stored (its new metadata.generation)."""
        patched: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": changes}
        )
        return patched

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def wait_status(
        self, name: str, accept: Callable[[dict[str, Any]], bool], *, what: str, timeout: float = 180
    ) -> dict[str, Any]:
        def accepted() -> dict[str, Any] | None:
            found = self.status(name)
            return found if accept(found) else None

        return wait_for(
            accepted,
            timeout=timeout,
            what=f"{name}: {what}",
            describe=lambda: f"status: {self.status(name)}",
        )

    def wait_phase(self, name: str, *phases: str, timeout: float = 180) -> dict[str, Any]:
        return self.wait_status(
            name, lambda s: s.get("phase") in phases, what=f"phase {phases}", timeout=timeout
        )

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        return next((c for c in self.status(name).get("conditions") or [] if c["type"] == kind), None)

    def wait_condition(
        self, name: str, kind: str, status: str, reason: str | None = None, *, timeout: float = 180
    ) -> dict[str, Any]:
        """The condition of `kind` as first seen with `status` (and `reason`, when given)."""

        def found(conditions: list[dict[str, Any]]) -> dict[str, Any] | None:
            return next((c for c in conditions if c["type"] == kind), None)

        def holds(seen: dict[str, Any]) -> bool:
            condition = found(seen.get("conditions") or [])
            return (
                condition is not None
                and condition["status"] == status
                and reason in (None, condition["reason"])
            )

        seen = self.wait_status(
            name, holds, what=f"condition {kind}={status} ({reason or 'any reason'})", timeout=timeout
        )
        condition = found(seen["conditions"])
        assert condition is not None
        return condition

    def events(self, name: str) -> list[Any]:
        """The Events about this FlashSale, oldest first."""
        found = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name},involvedObject.kind={KIND}"
        ).items
        return sorted(found, key=lambda e: e.event_time or e.first_timestamp or e.metadata.creation_timestamp)

    def event_reasons(self, name: str) -> list[str]:
        return [e.reason for e in self.events(name)]

    def wait_event_reasons(
        self, name: str, among: Collection[str], expected: Sequence[str], *, prefix: bool = False,
        timeout: float = 60,
    ) -> list[str]:  # fmt: skip
        """The reasons in `among` of this FlashSale's Events, oldest first, once they are `expected`
        (or start with it): a phase's Event is posted just after the status records the phase, so it
        may trail the status by a moment. A repeated or missing Event never matches: a timeout."""

        def matched() -> list[str] | None:
            reasons = [r for r in self.event_reasons(name) if r in among]
            return reasons if (reasons[: len(expected)] if prefix else reasons) == list(expected) else None

        return wait_for(
            matched, timeout=timeout, what=f"{name}: Events {list(expected)}",
            describe=lambda: f"Events: {self.event_reasons(name)}",
        )  # fmt: skip
