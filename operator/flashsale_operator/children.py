"""Applies a sale's children: its Kafka topic, its Secret, and everything `render` draws.

Idempotent and re-runnable: the topic is created or grown, the Secret created once (with the sale's
own order-path key) and afterwards only refreshed with the platform's shared values, the rest
server-side applied. Runs on create, resume and every spec change.

With a dedicated queue the broker (after the NetworkPolicies) goes first, then the topic is created
on it once it answers - `BrokerStarting` (a kopf.TemporaryError) until then, retried in 2 s - and
only then the Secret and the pods that use the topic.

Before anything is written, every child that already exists must be the sale's own (ownership.py):
if one is not, nothing is written at all and `ChildConflict` (a kopf.TemporaryError, retried every
10 s) names it. One read per child, on create, resume and spec change only.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import kopf

from flashsale_operator import ownership, queue, render
from flashsale_operator.kube import ForeignObject
from flashsale_operator.ownership import UNREAD_HOLDER
from flashsale_operator.runtime import Platform
from flashsale_operator.spec import FlashSaleSpec
from flashsale_sale.contract import topic_name

ORDER_PATH_KEY_BYTES = 32
BROKER_POLL_SECONDS = 2.0


class BrokerStarting(kopf.TemporaryError):
    """The sale's dedicated broker does not answer yet: a wait, not a failure."""


class ChildConflict(kopf.TemporaryError):
    """A child's name is taken by an object that is not the sale's: nothing written, retried later."""

    def __init__(self, conflicts: list[ownership.Conflict]) -> None:
        super().__init__("; ".join(str(c) for c in conflicts), delay=ownership.RETRY_SECONDS)
        self.conflicts = conflicts


async def apply_children(platform: Platform, ref: render.SaleRef, spec: FlashSaleSpec) -> None:
    config, kube = platform.config, platform.kube
    bootstrap = queue.bootstrap_servers(ref, spec, config)
    rendered = render.children(ref, spec, config)
    shared = render.sale_secret(ref, config, order_path_key=None)
    await refuse_foreign(platform, ref, [shared, *rendered])
    if queue.is_dedicated(spec):
        cut = 1 + next(i for i, child in enumerate(rendered) if child["kind"] == "StatefulSet")
        await _apply(platform, rendered[:cut])
        rendered = rendered[cut:]
        waiting = await asyncio.to_thread(platform.stores.broker_waiting, bootstrap)
        if waiting is not None:
            raise BrokerStarting(f"waiting for the sale's Kafka broker: {waiting}", delay=BROKER_POLL_SECONDS)
    await asyncio.to_thread(
        platform.stores.ensure_topic, topic_name(ref.uid), spec.queue.partitions, bootstrap
    )
    created = render.sale_secret(ref, config, order_path_key=secrets.token_urlsafe(ORDER_PATH_KEY_BYTES))
    try:
        await asyncio.to_thread(kube.create_or_patch_secret, created, shared, ref.uid)
    except ForeignObject as foreign:  # appeared since the check: still refused, still untouched
        raise ChildConflict([foreign.conflict]) from None
    await _apply(platform, rendered)


async def refuse_foreign(platform: Platform, ref: render.SaleRef, children: list[dict[str, Any]]) -> None:
    """Raises ChildConflict naming every child whose name an object that is not the sale's holds."""
    conflicts = []
    for child in children:
        meta = child["metadata"]
        if child["kind"] == "Secret":  # never read: a patch of `test` operations says whose it is
            own = await asyncio.to_thread(
                platform.kube.secret_is_own, meta["name"], meta["namespace"], ref.uid
            )
            found = None if own in (None, True) else ownership.Conflict("Secret", meta["name"], UNREAD_HOLDER)
        else:
            owners = await asyncio.to_thread(platform.kube.owners, child)
            found = ownership.conflict(child, owners, ref.uid)
        if found is not None:
            conflicts.append(found)
    if conflicts:
        raise ChildConflict(conflicts)


async def _apply(platform: Platform, children: list[dict[str, Any]]) -> None:
    for child in children:
        await asyncio.to_thread(platform.kube.apply, child)
