"""Applies a sale's children: its Kafka topic, its Secret, and everything `render` draws.

Idempotent and re-runnable: the topic is created or grown, the Secret created once (with the sale's
own order-path key) and afterwards only refreshed with the platform's shared values, the rest
server-side applied. Runs on create, resume and every spec change.

With a dedicated queue the broker (after the NetworkPolicies) goes first, then the topic is created
on it once it answers - `BrokerStarting` (a kopf.TemporaryError) until then, retried in 2 s - and
only then the Secret and the pods that use the topic.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import kopf

from flashsale_operator import queue, render
from flashsale_operator.runtime import Platform
from flashsale_operator.spec import FlashSaleSpec
from flashsale_sale.contract import topic_name

ORDER_PATH_KEY_BYTES = 32
BROKER_POLL_SECONDS = 2.0


class BrokerStarting(kopf.TemporaryError):
    """The sale's dedicated broker does not answer yet: a wait, not a failure."""


async def apply_children(platform: Platform, ref: render.SaleRef, spec: FlashSaleSpec) -> None:
    config, kube = platform.config, platform.kube
    bootstrap = queue.bootstrap_servers(ref, spec, config)
    rendered = render.children(ref, spec, config)
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
    shared = render.sale_secret(ref, config, order_path_key=None)
    await asyncio.to_thread(kube.create_or_patch_secret, created, shared)
    await _apply(platform, rendered)


async def _apply(platform: Platform, children: list[dict[str, Any]]) -> None:
    for child in children:
        await asyncio.to_thread(platform.kube.apply, child)
