"""`kubectl delete fsale X`: close the sale, stop its writers, settle, then remove its Redis keys and topic.

Run from the finalizer, step by step; each step is idempotent and a step that must wait raises
`kopf.TemporaryError`, so kopf retries it and a restarted operator resumes where it stopped:

1. the start flag off (gateways refuse new orders at once);
2. the gateways scaled to zero and gone (nothing publishes or writes a key any more);
3. the consumers drain the topic (every accepted reservation becomes an order), bounded in time;
4. the consumers scaled to zero and gone (nothing writes a key back);
5. the sale retired in the record (its gate is never rebuilt) and its Redis keys removed;
6. its Kafka topic deleted.
The children then go by garbage collection (owner references); orders stay in PostgreSQL.

A dedicated queue (`spec.queue.mode: dedicated`) is drained from the sale's own broker; its topic is
deleted there too unless the broker is already gone (the broker, its Service and its claim go by
garbage collection and the StatefulSet's claim retention policy: the data goes with the sale).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import kopf

from flashsale_operator import queue
from flashsale_operator.render import SaleRef
from flashsale_operator.runtime import Platform
from flashsale_sale.contract import topic_name

log = logging.getLogger(__name__)

DRAIN_SECONDS = 120.0  # then the teardown goes on and says how much was left
POLL_SECONDS = 1.0


def component_selector(ref: SaleRef, component: str) -> str:
    return f"app.kubernetes.io/instance={ref.name},app.kubernetes.io/component={component}"


async def tear_down(platform: Platform, ref: SaleRef, *, started: datetime, mode: str = "shared") -> None:
    stores = platform.stores
    bootstrap = queue.bootstrap_for(ref, mode, platform.config)
    dedicated = mode == "dedicated"
    await asyncio.to_thread(stores.set_open, ref.uid, False)
    await _stop(platform, ref, "gateway")
    await _drain(platform, ref, started, bootstrap, dedicated=dedicated)
    await _stop(platform, ref, "consumer")
    await asyncio.to_thread(stores.retire, ref.uid)
    if dedicated and await asyncio.to_thread(stores.broker_waiting, bootstrap) is not None:
        log.info("sale %s/%s: its broker is gone, and its topic with it", ref.namespace, ref.name)
    else:
        await asyncio.to_thread(stores.delete_topic, topic_name(ref.uid), bootstrap)
    stores.forget(bootstrap)
    log.info("sale %s/%s: torn down", ref.namespace, ref.name)


async def _stop(platform: Platform, ref: SaleRef, component: str) -> None:
    kube = platform.kube
    if not await asyncio.to_thread(
        kube.scale, f"{ref.name}-{component}", ref.namespace, 0, owner_uid=ref.uid
    ):
        return  # a Deployment of that name that is not the sale's (ownership.py): never touched
    left = await asyncio.to_thread(kube.pod_count, ref.namespace, component_selector(ref, component))
    if left:
        raise kopf.TemporaryError(f"waiting for {left} {component} pod(s) to be gone", delay=POLL_SECONDS)


async def _drain(
    platform: Platform, ref: SaleRef, started: datetime, bootstrap: str, *, dedicated: bool
) -> None:
    try:
        lag = await asyncio.to_thread(platform.stores.lag, topic_name(ref.uid), ref.uid, bootstrap)
    except Exception as error:
        if dedicated and await asyncio.to_thread(platform.stores.broker_waiting, bootstrap) is not None:
            log.warning("sale %s: its broker is gone; nothing left to drain", ref.name)
            return
        raise kopf.TemporaryError(f"consumer lag unknown ({error})", delay=POLL_SECONDS * 5) from error
    if lag.total == 0:
        return
    waited = (datetime.now(UTC) - started).total_seconds()
    if waited < DRAIN_SECONDS:
        raise kopf.TemporaryError(
            f"waiting for the consumers: {lag.total} message(s) behind", delay=POLL_SECONDS
        )
    log.warning("sale %s: %d message(s) not written after %.0f s; tearing down", ref.name, lag.total, waited)
