"""The sale as this gateway sees it: one object, its status answer rebuilt only when something changes.

The Redis start flag is the authority (the operator flips it, a pause flips it back); the clock only
tells "scheduled" from "paused" and ends the sale at endsAt. The status answer is one shared bytes
object: a million shoppers polling `/status.js` cost one dict lookup each, never a JSON encode.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

# `remaining` in the status moves with every reservation; rebuilding the answer at most this often
# keeps the encode off the hot path while the number stays fresh enough for a progress bar.
REMAINING_REFRESH_SECONDS: Final = 0.25


class SaleState(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    PAUSED = "paused"
    SOLD_OUT = "soldout"
    ENDED = "ended"


def sale_state(flag_open: bool, sold_out: bool, now: float, starts_at: float, ends_at: float) -> SaleState:
    """The public state: the flag decides whether orders are taken, the clock only names the wait."""
    if now >= ends_at:
        return SaleState.ENDED
    if not flag_open:
        return SaleState.SCHEDULED if now < starts_at else SaleState.PAUSED
    return SaleState.SOLD_OUT if sold_out else SaleState.LIVE


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def status_payload(
    *, sale: str, state: SaleState, starts_at: str, ends_at: str, remaining: int | None, order_path: str
) -> bytes:
    """The status JSON; the order path only while live (before the start nobody may learn it)."""
    payload: dict[str, object] = {
        "sale": sale,
        "state": state.value,
        "startsAt": starts_at,
        "endsAt": ends_at,
    }
    if remaining is not None:
        payload["remaining"] = max(remaining, 0)
    payload["orderPath"] = order_path if state is SaleState.LIVE else None
    return json.dumps(payload, separators=(",", ":")).encode()


class StatusBoard:
    """Local sale state fed by the flag watcher and the reserve replies; read by every request.

    `accepting` (flag on, not ended) says whether the order path takes requests at all; `sold_out` is
    the local flag that answers 410 with zero Redis calls. Both are plain attributes: reading them is
    the cheapest filter there is.
    """

    def __init__(
        self,
        *,
        sale: str,
        starts_at: datetime,
        ends_at: datetime,
        order_path: str,
        render_js: Callable[[bytes], bytes],
        on_change: Callable[[StatusBoard], None] = lambda _: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sale = sale
        self.starts_at = starts_at.timestamp()
        self.ends_at = ends_at.timestamp()
        self._starts_text = rfc3339(starts_at)
        self._ends_text = rfc3339(ends_at)
        self.order_path = order_path
        self._render_js = render_js
        self._on_change = on_change
        self._clock = clock
        self.flag_open = False
        self.sold_out = False
        self.remaining: int | None = None
        self.loaded = False  # the flag has been read from Redis at least once
        self.accepting = False
        self.state = sale_state(False, False, clock(), self.starts_at, self.ends_at)
        self._shown_remaining: int | None = None
        self._built_at = 0.0
        self.status_json = b""
        self.status_js = b""
        self._rebuild()

    def observe(self, flag_open: bool, stock: int | None) -> None:
        """A fresh read of the flag and the stock (the polling fallback, and after each event)."""
        self.loaded = True
        self.flag_open = flag_open
        self.sold_out = stock is not None and stock <= 0
        self.remaining = stock
        self.refresh()

    def set_flag(self, flag_open: bool) -> None:
        self.loaded = True
        self.flag_open = flag_open
        self.refresh()

    def set_sold_out(self, sold_out: bool) -> None:
        self.sold_out = sold_out
        if sold_out:
            self.remaining = 0
        self.refresh()

    def note_remaining(self, remaining: int) -> None:
        """The stock left after a reserve call (-1: no gate). Zero flips the local sold-out flag at once."""
        self.remaining = remaining if remaining >= 0 else None
        if remaining == 0 and not self.sold_out:
            self.sold_out = True
            self.refresh()

    def refresh(self) -> None:
        """Recompute the state; rebuild the answer at once on a change, `remaining` at most every 250 ms."""
        now = self._clock()
        state = sale_state(self.flag_open, self.sold_out, now, self.starts_at, self.ends_at)
        self.accepting = self.flag_open and now < self.ends_at
        if state is not self.state:
            self.state = state
            self._rebuild()
        elif self.remaining != self._shown_remaining and now - self._built_at >= REMAINING_REFRESH_SECONDS:
            self._rebuild()

    def _rebuild(self) -> None:
        self._built_at = self._clock()
        self._shown_remaining = self.remaining
        self.status_json = status_payload(
            sale=self.sale,
            state=self.state,
            starts_at=self._starts_text,
            ends_at=self._ends_text,
            remaining=self.remaining,
            order_path=self.order_path,
        )
        self.status_js = self._render_js(self.status_json)
        self._on_change(self)
