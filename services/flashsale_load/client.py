"""The crowd on the wire: each shopper does what the sale page's script does, paced and bounded.

A shopper reads the status (`/api/status`, the page's poll), and if the sale is live posts
`{"quantity": n}` with its bearer token to the order path, retrying 429 and 503 after Retry-After at
most five times (as sale.js); a repeat clicker posts again after its answer; a payer's payment
service pays the reservation (`POST /api/orders/{id}/pay` with the payment credential), retrying
while the order is not written yet. After the crowd, every reservation is looked up with its owner's
token (`GET /api/orders/{id}`) until it is no longer merely reserved: accepted vs ordered vs paid.

Every request waits for the pacer (`rate` request starts per second at most) and the run stops
sending new requests at its deadlines, so a rehearsal against staging cannot run away.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from flashsale_load.crowd import Shopper
from flashsale_load.report import Outcome, Tally

JSON_HEADERS = {"accept": "application/json"}
PAGE_ATTEMPTS = 5  # sale.js retries a 429/503 at most this often
MAX_RETRY_AFTER_S = 30  # and waits at most this long (sale.js: min(30, Retry-After))
LIVE_POLL_S = 1.0


class NotLive(RuntimeError):
    """The sale did not go live before the wait ended."""


@dataclass(frozen=True)
class Target:
    url: str  # the gateway's public base URL, no trailing slash
    token_for: Callable[[Shopper], str]  # a valid token, or a forged one for a bot
    payment_credential: str | None  # None: nobody pays


@dataclass(frozen=True)
class Limits:
    rate: float  # request starts per second, at most
    duration_s: float  # no new buy after this long from the sale seen live
    connections: int = 64
    request_timeout_s: float = 10.0
    wait_live_s: float = 600.0
    settle_s: float = 60.0  # after the crowd: payments and order lookups end by then


class Pacer:
    """At most `rate` starts per second, in order: each caller takes the next free slot."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = time.monotonic()

    async def slot(self) -> None:
        now = time.monotonic()
        start = max(self._next, now)
        self._next = start + self._interval
        if start > now:
            await asyncio.sleep(start - now)


class LoadRun:
    def __init__(self, target: Target, limits: Limits, progress: Callable[[str], None] | None = None) -> None:
        self.target = target
        self.limits = limits
        self.tally = Tally()
        self._progress = progress
        self._pacer = Pacer(limits.rate)
        self._live_at = 0.0
        self._owners: dict[str, str] = {}  # reservation id -> its owner's token
        self._http: aiohttp.ClientSession | None = None

    async def run(self, shoppers: list[Shopper]) -> Tally:
        connector = aiohttp.TCPConnector(limit=self.limits.connections)
        timeout = aiohttp.ClientTimeout(total=self.limits.request_timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as self._http:
            await self._wait_live()
            self._live_at = time.monotonic()
            reporter = asyncio.create_task(self._report_progress()) if self._progress else None
            try:
                await self._play(shoppers)
                await self._settle()
            finally:
                if reporter is not None:
                    reporter.cancel()
        return self.tally

    def _since_live(self) -> float:
        return time.monotonic() - self._live_at

    async def _request(
        self, method: str, path: str, token: str | None = None, body: bytes | None = None
    ) -> tuple[int, dict[str, Any], float, float]:
        """(status, JSON answer or {}, Retry-After seconds, latency); status 0 when no answer came."""
        assert self._http is not None
        await self._pacer.slot()
        headers = dict(JSON_HEADERS)
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        if body is not None:
            headers["content-type"] = "application/json"
        self.tally.requests += 1
        started = time.monotonic()
        try:
            async with self._http.request(
                method, self.target.url + path, data=body, headers=headers
            ) as answer:
                raw = await answer.read()
                retry_after = _retry_after(answer.headers.get("retry-after"))
                status = answer.status
        except (aiohttp.ClientError, TimeoutError):
            return 0, {}, 1.0, time.monotonic() - started
        latency = time.monotonic() - started
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {}
        return status, parsed if isinstance(parsed, dict) else {}, retry_after, latency

    async def _wait_live(self) -> None:
        deadline = time.monotonic() + self.limits.wait_live_s
        while True:
            status, answer, _, _ = await self._request("GET", "/api/status")
            if status == 200 and answer.get("state") == "live" and answer.get("orderPath"):
                return
            if status == 200 and answer.get("state") in ("soldout", "ended"):
                raise NotLive(f"the sale is {answer['state']}")
            if time.monotonic() > deadline:
                raise NotLive(
                    f"not live after {self.limits.wait_live_s:.0f} s (last status {status} {answer})"
                )
            await asyncio.sleep(LIVE_POLL_S)

    async def _play(self, shoppers: list[Shopper]) -> None:
        """Each shopper arrives at its time (never after the deadline), at most `connections` at once."""
        room = asyncio.Semaphore(self.limits.connections)
        visits = []
        for shopper in shoppers:
            if shopper.arrives_at_s >= self.limits.duration_s:
                break
            wait = shopper.arrives_at_s - self._since_live()
            if wait > 0:
                await asyncio.sleep(wait)
            await room.acquire()
            visit = asyncio.create_task(self._visit(shopper))
            visit.add_done_callback(lambda _: room.release())
            visits.append(visit)
        await asyncio.gather(*visits)

    async def _visit(self, shopper: Shopper) -> None:
        status, answer, _, _ = await self._request("GET", "/api/status")
        order_path = answer.get("orderPath") if status == 200 and answer.get("state") == "live" else None
        if not isinstance(order_path, str):
            self.tally.saw_not_live += 1
            if answer.get("state") == "soldout":
                self.tally.sold_out(self._since_live())
            return
        token = self.target.token_for(shopper)
        first = await self._buy(order_path, token, shopper.quantity)
        if first is None:
            return
        for _ in range(shopper.clicks - 1):
            self.tally.repeat_clicks += 1
            again = await self._buy(order_path, token, shopper.quantity)
            if again is not None and again != first:
                self.tally.repeat_new_reservations += 1
        if shopper.pays and self.target.payment_credential is not None:
            await self._pay(first)

    async def _buy(self, order_path: str, token: str, quantity: int) -> str | None:
        """One click as sale.js makes it; the reservation id if accepted."""
        body = json.dumps({"quantity": quantity}, separators=(",", ":")).encode()
        for _ in range(PAGE_ATTEMPTS):
            if self._since_live() >= self.limits.duration_s:
                return None
            status, answer, retry_after, latency = await self._request("POST", order_path, token, body)
            outcome = self.tally.answered(status, latency, self._since_live())
            if outcome is Outcome.ACCEPTED and isinstance(answer.get("reservationId"), str):
                reservation = str(answer["reservationId"])
                self.tally.reservations[reservation] = int(answer.get("quantity") or quantity)
                self._owners[reservation] = token
                return reservation
            if outcome not in (Outcome.LIMITED, Outcome.SHED):
                return None
            await asyncio.sleep(retry_after)
        return None

    async def _pay(self, reservation: str) -> None:
        """The shop's payment service pays, retrying while the order is not written yet."""
        deadline = self.limits.duration_s + self.limits.settle_s
        path = f"/api/orders/{reservation}/pay"
        while self._since_live() < deadline:
            status, answer, retry_after, _ = await self._request("POST", path, self.target.payment_credential)
            if status == 200:
                self.tally.paid.add(reservation)
                return
            if status == 409 and answer.get("error") == "expired":
                self.tally.payment_expired.add(reservation)
                return
            if status not in (0, 409, 429, 503):
                return
            await asyncio.sleep(retry_after)

    async def _settle(self) -> None:
        """Every reservation looked up by its owner until it is an order (or the settle time ends)."""
        deadline = self._since_live() + self.limits.settle_s
        room = asyncio.Semaphore(self.limits.connections)

        async def look_up(reservation: str) -> None:
            async with room:
                while self._since_live() < deadline:
                    path = f"/api/orders/{reservation}"
                    status, answer, retry_after, _ = await self._request(
                        "GET", path, self._owners[reservation]
                    )
                    state = answer.get("state") if status == 200 else None
                    if isinstance(state, str):
                        self.tally.states[reservation] = state
                        if state != "reserved":
                            return
                    await asyncio.sleep(max(retry_after, 0.5))

        await asyncio.gather(*(look_up(r) for r in list(self.tally.reservations)))

    async def _report_progress(self) -> None:
        assert self._progress is not None
        sent = 0
        while True:
            await asyncio.sleep(1.0)
            answers = self.tally.answers
            rate, sent = self.tally.requests - sent, self.tally.requests
            self._progress(
                f"[{self._since_live():6.1f} s] {rate:5d} req/s  accepted {answers[Outcome.ACCEPTED]}"
                f"  sold out {answers[Outcome.SOLD_OUT]}  shed {answers[Outcome.SHED]}"
                f"  limited {answers[Outcome.LIMITED]}  refused {answers[Outcome.REFUSED]}"
                f"  paid {len(self.tally.paid)}"
            )


def _retry_after(value: str | None) -> float:
    try:
        return float(min(MAX_RETRY_AFTER_S, max(1, int(value or "1"))))
    except ValueError:
        return 1.0
