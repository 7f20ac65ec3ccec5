"""A crowd that keeps shopping while a live sale changes under it (the rollout e2e tests).

Distinct shoppers arrive at a steady pace on their own event loop in a background thread, each
buying once through `status.gateway.url` as the sale page does: read the page for the per-user
limit and the status for the order path, post, retry 429/503 after Retry-After, reload the page
after a 422, a 404 or a dropped connection, ask for one unit fewer after a 409. Every other shopper
is an "app" user who asks for the new limit as soon as the spec changes (the edge caches the page,
so page users keep the old limit during a rollout). Every answer is kept with its time.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from types import TracebackType

import httpx

from flashsale_sale import tokens

_SALE_CONFIG = re.compile(r'<script type="application/json" id="sale-config">(.*?)</script>', re.S)


@dataclass(frozen=True)
class Outcome:
    """How one shopper's visit ended."""

    user: str
    status: int  # 202 reserved, 409 fewer left than even one, 410 sold out, 0 gave up (out of patience)
    reservation_id: str | None
    quantity: int  # units reserved (0 unless 202)
    at: float  # time.monotonic() of the answer


class Crowd:
    """Distinct shoppers arriving at `per_second`, each buying once as the sale page does.

    A shopper reads the page (its per-user limit) and the status (the order path), asks for as many
    units as the page allows, tries again after a 429 or 503 (after Retry-After, 1 s without one),
    reloads the page after any other refusal (a replica with another limit answers 422) or a failed
    connection, and takes one unit fewer when fewer are left (409). Every other shopper uses the
    shop's app instead of the page: once `app_limit` is set (the app was told of a new per-user
    limit), it asks for that many units, whatever the page (cached at the edge) still says.
    Arrivals stop at `stop()`, at the first "sold out" or after `most` shoppers; `stop()` then waits
    for every shopper's answer.
    """

    def __init__(self, url: str, token_key: bytes, *, name: str, per_second: float, most: int,
                 patience: float = 300.0) -> None:  # fmt: skip
        self.url = url
        self.per_second = per_second
        self.patience = patience
        self.users = [f"{name}-{i}" for i in range(most)]
        self._tokens = tokens.mint_many(token_key, self.users)
        self.outcomes: list[Outcome] = []
        self.retries: Counter[str] = Counter()  # why shoppers had to try again
        self.sold_out = threading.Event()
        self.app_limit: int | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=f"crowd-{name}", daemon=True)

    def __enter__(self) -> Crowd:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.patience + 60)
        assert not self._thread.is_alive(), "the crowd did not finish"
        if self._error is not None:
            raise AssertionError(f"the crowd failed: {self._error!r}") from self._error

    def reservations(self, *, after: float = 0.0) -> list[Outcome]:
        return [o for o in list(self.outcomes) if o.status == 202 and o.at >= after]

    def _main(self) -> None:
        try:
            asyncio.run(self._arrivals())
        except BaseException as error:  # reported by stop(), in the test's thread
            self._error = error

    async def _arrivals(self) -> None:
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
        async with httpx.AsyncClient(base_url=self.url, timeout=30, limits=limits) as client:
            shoppers: list[asyncio.Task[None]] = []
            for user, token in zip(self.users, self._tokens, strict=True):
                if self._stop.is_set() or self.sold_out.is_set():
                    break
                app = len(shoppers) % 2 == 1
                shoppers.append(asyncio.create_task(self._shop(client, user, token, app=app)))
                await asyncio.sleep(1 / self.per_second)
            await asyncio.gather(*shoppers)

    async def _shop(self, client: httpx.AsyncClient, user: str, token: str, *, app: bool) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience
        wanted: int | None = None
        path: str | None = None
        while loop.time() < deadline:
            try:
                wanted = wanted or await self._wanted(client, app=app)
                path = path or await self._order_path(client)
                if path is None:  # sold out or ended before this shopper got to buy
                    self._answer(user, 410, None, 0)
                    return
                answer = await client.post(
                    path, headers={"Authorization": f"Bearer {token}"}, json={"quantity": wanted}
                )
                if answer.status_code == 202:
                    reservation = answer.json()
                    self._answer(user, 202, reservation["reservationId"], int(reservation["quantity"]))
                    return
            except (httpx.TransportError, ValueError, KeyError) as error:
                self.retries[type(error).__name__] += 1
                wanted = path = None
                await asyncio.sleep(0.5)
                continue
            code = answer.status_code
            if code == 410 or (code == 409 and wanted == 1):
                self._answer(user, code, None, 0)
                return
            self.retries[str(code)] += 1
            if code == 409:
                wanted -= 1
            elif code in (429, 503):
                await asyncio.sleep(min(float(answer.headers.get("retry-after") or 1), 5.0))
            else:  # 422 from a replica with another limit, 404 from one that is not live yet, an edge's 502
                wanted = path = None
                await asyncio.sleep(0.5)
        self._answer(user, 0, None, 0)

    async def _wanted(self, client: httpx.AsyncClient, *, app: bool) -> int:
        """As many units as the app was told, or as the sale page allows."""
        if app and self.app_limit is not None:
            return self.app_limit
        page = await client.get("/")
        found = _SALE_CONFIG.search(page.text)
        if page.status_code != 200 or found is None:
            raise ValueError(f"no sale page ({page.status_code})")
        return int(json.loads(found.group(1))["perUserLimit"])

    async def _order_path(self, client: httpx.AsyncClient) -> str | None:
        """The order path from the status; None once sold out or ended; ValueError while not live."""
        status = (await client.get("/api/status")).json()
        if status["state"] in ("soldout", "ended"):
            return None
        path = status.get("orderPath")
        if not path:
            raise ValueError(f"the sale is {status['state']}")
        return str(path)

    def _answer(self, user: str, status: int, reservation_id: str | None, quantity: int) -> None:
        if status == 410:
            self.sold_out.set()
        self.outcomes.append(Outcome(user, status, reservation_id, quantity, time.monotonic()))


# -- what the tests look at -------------------------------------------------------------------------
