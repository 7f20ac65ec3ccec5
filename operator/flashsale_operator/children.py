"""Applies a sale's children: its Kafka topic, its Secret, and everything `render` draws.

Idempotent and re-runnable: the topic is created or grown, the Secret created once (with the sale's
own order-path key) and afterwards only refreshed with the platform's shared values, the rest
server-side applied. Runs on create, resume and every spec change.
"""

from __future__ import annotations

import asyncio
import secrets

from flashsale_operator import render
from flashsale_operator.runtime import Platform
from flashsale_operator.spec import FlashSaleSpec
from flashsale_sale.contract import topic_name

ORDER_PATH_KEY_BYTES = 32


async def apply_children(platform: Platform, ref: render.SaleRef, spec: FlashSaleSpec) -> None:
    config, kube = platform.config, platform.kube
    await asyncio.to_thread(platform.stores.ensure_topic, topic_name(ref.uid), spec.queue.partitions)
    created = render.sale_secret(ref, config, order_path_key=secrets.token_urlsafe(ORDER_PATH_KEY_BYTES))
    shared = render.sale_secret(ref, config, order_path_key=None)
    await asyncio.to_thread(kube.create_or_patch_secret, created, shared)
    for child in render.children(ref, spec, config):
        await asyncio.to_thread(kube.apply, child)
