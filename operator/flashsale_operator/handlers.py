"""The kopf handlers: thin, they decide which spec the sale runs with and delegate.

- startup: settings, the platform's clients, the database schema, the metrics server;
- create / resume / update: judge the spec (acceptance), apply the children, poke the sale's loop;
- a daemon per sale: the loop (lifecycle) that prewarms, flips, ends and reports;
- a second daemon per sale: the consumers' scaling loop (scaling), from Ready until deletion;
- delete (the finalizer): the teardown, held until every accepted reservation is written.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import kopf
import prometheus_client

from flashsale_operator import config as operator_config
from flashsale_operator import metrics
from flashsale_operator.acceptance import judge
from flashsale_operator.children import BrokerStarting, ChildConflict, apply_children
from flashsale_operator.conditions import Reason
from flashsale_operator.isolation import allow_list
from flashsale_operator.kube import Kube, api_client
from flashsale_operator.lifecycle import SaleLoop
from flashsale_operator.runtime import Platform, platform_of, sale_state
from flashsale_operator.scaling import ConsumerScaler
from flashsale_operator.spec import RESOURCE
from flashsale_operator.status import parse_time
from flashsale_operator.stores import Stores
from flashsale_operator.teardown import Deleting, tear_down

log = logging.getLogger(__name__)

FINALIZER = "flashsale.dev/teardown"
BIND_HOST_ENV = "FLASHSALE_OPERATOR_BIND_HOST"
THREADS = 64  # blocking middleware calls of every sale; a flip never queues behind a slow query


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Our own names for kopf's bookkeeping; never change them (kopf would take every sale for new).
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="flashsale.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="flashsale.dev", key="last-handled-configuration"
    )
    settings.networking.request_timeout = 30
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.background.cancellation_polling = 1
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(THREADS, "flashsale"))
    config = operator_config.load()
    stores = Stores(config)
    stores.migrate()
    memo.platform = Platform(config, stores, Kube(api_client()))
    bind = os.environ.get(BIND_HOST_ENV, "127.0.0.1")
    prometheus_client.start_http_server(config.metrics_port, addr=bind)
    log.info("serving every namespace; metrics on %s:%d", bind, config.metrics_port)


@kopf.on.cleanup()
def close(memo: kopf.Memo, **_: Any) -> None:
    platform: Platform | None = getattr(memo, "platform", None)
    if platform is not None:
        platform.stores.close()


@kopf.on.create(*RESOURCE)
@kopf.on.resume(*RESOURCE)
@kopf.on.update(*RESOURCE)
async def reconcile(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, memo: kopf.Memo, **_: Any) -> None:
    platform, sale = platform_of(memo), sale_state(memo, body)
    stock = status.get("stock") or {}
    # A new sale is judged as of its creation (an operator down across its start must not fail it);
    # a failed one being fixed, as of now.
    created = parse_time(body["metadata"].get("creationTimestamp"))
    judged_at = datetime.now(UTC) if status.get("phase") == "Failed" or created is None else created
    verdict = judge(
        dict(spec),
        now=judged_at,
        previous=sale.accepted,
        prewarmed=parse_time(status.get("prewarmedAt")) is not None,
        recorded_stock=stock.get("total"),
        allowed=allow_list(platform.config),
    )
    if verdict.problems and verdict.problems != sale.problems:
        for problem in verdict.problems:
            kopf.warn(body, reason=problem.reason, message=f"{problem.field}: {problem.message}")
    sale.problems = verdict.problems
    sale.failed = verdict.spec is None
    if verdict.spec is None:
        metrics.RECONCILES.labels("invalid").inc()
        sale.poke()
        return
    sale.accepted = verdict.spec
    if not verdict.refused_change:
        sale.generation = body["metadata"].get("generation")
    sale.poke()  # a pause or a new schedule takes effect before the children roll
    try:
        await apply_children(platform, sale.ref, verdict.spec)
    except ChildConflict as conflict:  # a name taken by an object not ours: untouched, said, retried
        metrics.RECONCILES.labels("conflict").inc()
        if sale.conflict != str(conflict):
            kopf.warn(body, reason=Reason.CONFLICT, message=f"children not applied: {conflict}")
        sale.apply_error, sale.waiting, sale.conflict = None, str(conflict), str(conflict)
        sale.poke()
        raise
    except BrokerStarting as waiting:  # a wait, said as such (kopf retries it without a stack trace)
        metrics.RECONCILES.labels("waiting").inc()
        sale.apply_error, sale.waiting, sale.conflict = None, str(waiting), None
        sale.poke()
        raise
    except Exception as error:
        metrics.RECONCILES.labels("error").inc()
        sale.apply_error, sale.waiting, sale.conflict = f"{type(error).__name__}: {error}", None, None
        sale.poke()
        raise kopf.TemporaryError(f"children not applied: {sale.apply_error}", delay=5) from error
    sale.apply_error, sale.waiting, sale.conflict = None, None, None
    metrics.RECONCILES.labels("applied").inc()
    sale.poke()


@kopf.daemon(*RESOURCE, cancellation_timeout=10)
async def run_sale(
    body: kopf.Body, status: kopf.Status, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    sale = sale_state(memo, body)
    sale.daemon_done.clear()
    try:
        await SaleLoop(platform_of(memo), sale, body, dict(status)).run(stopped)
    finally:
        sale.daemon_done.set()


@kopf.daemon(*RESOURCE, cancellation_timeout=10)
async def scale_consumers(
    body: kopf.Body, status: kopf.Status, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    sale = sale_state(memo, body)
    sale.scaler_done.clear()
    try:
        await ConsumerScaler(platform_of(memo), sale, body, dict(status)).run(stopped)
    finally:
        sale.scaler_done.set()


@kopf.on.delete(*RESOURCE)
async def delete(body: kopf.Body, memo: kopf.Memo, started: datetime, retry: int, **_: Any) -> None:
    platform, sale = platform_of(memo), sale_state(memo, body)
    if retry == 0:
        kopf.info(
            body,
            reason="TearingDown",
            message="closing the sale; every accepted reservation is written before its keys and topic go",
        )
    if not (sale.daemon_done.is_set() and sale.scaler_done.is_set()):
        raise kopf.TemporaryError("waiting for the sale's loops to stop", delay=1)
    meta, status = body["metadata"], body.get("status") or {}
    deleting = Deleting(
        started=started,
        mode=str((body.get("spec") or {}).get("queue", {}).get("mode", "shared")),
        annotations=dict(meta.get("annotations") or {}),
        conditions=list(status.get("conditions") or []),
        generation=meta.get("generation"),
    )
    await tear_down(platform, sale, deleting)
    metrics.sale_phase(f"{sale.ref.namespace}/{sale.ref.name}", None)
