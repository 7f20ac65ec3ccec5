"""What the operator holds in memory: the platform's clients (one set) and each sale's state (one each).

kopf gives every object its own memo (a shallow copy of the operator's): `memo.platform` is shared,
`memo.sale` is this sale's. Nothing here is the truth: it is rebuilt from the object, its status and
Redis after a restart.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from flashsale_operator.config import OperatorConfig
from flashsale_operator.kube import Kube
from flashsale_operator.render import SaleRef
from flashsale_operator.spec import FlashSaleSpec
from flashsale_operator.stores import Stores
from flashsale_operator.validation import Problem


@dataclass
class Platform:
    config: OperatorConfig
    stores: Stores
    kube: Kube


@dataclass
class SaleState:
    ref: SaleRef
    accepted: FlashSaleSpec | None = None  # the last spec whose children were applied
    generation: int | None = None  # the metadata.generation `accepted` came from
    problems: list[Problem] = field(default_factory=list)  # why the spec (or a change) was refused
    failed: bool = False  # the sale cannot run at all (no acceptable spec)
    apply_error: str | None = None
    # What the children wait for before the gate may be built: their first apply, a dedicated broker.
    waiting: str | None = "the children are not applied yet"
    conflict: str | None = None  # the children whose names objects not the sale's hold (ownership.py)
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # a change the daemon must see now
    # Set while no loop runs: kopf never starts daemons for an object being deleted, so an operator
    # restarted mid-teardown has no loop to wait for (unset, its finalizer would wait forever).
    daemon_done: asyncio.Event = field(default_factory=lambda: _set(asyncio.Event()))
    reached_ready: asyncio.Event = field(default_factory=asyncio.Event)  # the scaling loop starts here
    scaler_done: asyncio.Event = field(default_factory=lambda: _set(asyncio.Event()))
    # The teardown's drain (the loops are stopped by then: the finalizer writes the status).
    drain_written: dict[str, Any] | None = None  # the status it last wrote
    drain_warned: int = 0  # warning periods already said in the log

    def poke(self) -> None:
        self.wake.set()


def _set(event: asyncio.Event) -> asyncio.Event:
    event.set()
    return event


def sale_state(memo: Any, body: Any) -> SaleState:
    """This sale's state, created on first use by whichever handler or daemon runs first."""
    state: SaleState | None = getattr(memo, "sale", None)
    if state is None:
        meta = body["metadata"]
        state = SaleState(SaleRef(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"]))
        memo.sale = state
    return state


def platform_of(memo: Any) -> Platform:
    platform: Platform = memo.platform
    return platform
