"""A crowd of shoppers running in the background while a chaos test breaks things under it.

Each shopper clicks until the answer is definitive (202, 409, 410), as a browser would: on a dropped
connection or a "try again" status (503, 429, and whatever else the scenario allows) it asks again,
moving on to the next gateway like a load balancer would. Every answer is recorded with when it was
asked and when it came, so a test can say what was answered while a component was away. A status
the scenario does not allow (a 500, say) ends that shopper and fails `join()`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import httpx

from flashsale_dev.sale import Consumer, Gateway, LocalSale

DEFINITIVE = frozenset({202, 409, 410})
RETRY = frozenset({429, 503})
NO_ANSWER = 0  # the connection failed: refused, reset, timed out
RUNNING: list[Crowd] = []  # every crowd started; the `sale` fixture halts them at the end of a test


@dataclass(frozen=True)
class Reply:
    user: str
    status: int  # NO_ANSWER when there was none
    reservation: str | None
    expires_at: str | None
    gateway: str
    sent: float  # time.monotonic() when asked
    answered: float  # ... and when the answer came


@dataclass
class Crowd:
    """`users` buy `quantity` each from `gateways`, `concurrency` at a time, for `deadline` s at most."""

    sale: LocalSale
    gateways: list[Gateway]
    users: list[str]
    quantity: int = 1
    retry_on: frozenset[int] = RETRY
    concurrency: int = 100
    deadline: float = 180.0
    pay_on_accept: bool = False  # pay each reservation as soon as it is accepted (until paid or expired)
    payments: dict[str, str] = field(default_factory=dict)  # reservation id -> the payment's outcome
    replies: list[Reply] = field(default_factory=list)  # every answer, retries included, in order
    final: dict[str, Reply] = field(default_factory=dict)  # each user's definitive (or last) answer
    unexpected: list[Reply] = field(default_factory=list)
    _asking: dict[int, float] = field(default_factory=dict)  # requests without an answer yet: when sent
    _halted: threading.Event = field(default_factory=threading.Event)
    _paused: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _failure: BaseException | None = None

    def start(self) -> Crowd:
        path = str(self.gateways[0].status()["orderPath"])  # what the page learns once the sale is live
        self._thread = threading.Thread(target=self._run, args=(path,), name="crowd", daemon=True)
        self._thread.start()
        RUNNING.append(self)
        return self

    def join(self, timeout: float | None = None) -> dict[str, Reply]:
        """Waits for every shopper (up to the crowd's deadline) and returns their final answers."""
        assert self._thread is not None, "start() first"
        self._thread.join(self.deadline + 30 if timeout is None else timeout)
        assert not self._thread.is_alive(), "the crowd did not finish"
        if self._failure is not None:
            raise self._failure
        assert not self.unexpected, f"unexpected answers: {self.unexpected[:5]}"
        undecided = [r for r in self.final.values() if r.status not in DEFINITIVE]
        assert not undecided, f"{len(undecided)} shoppers never got a definitive answer: {undecided[:5]}"
        return self.final

    def pause(self) -> None:
        """Shoppers send nothing new until `resume()` (the requests in flight still get their answers)."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def halt(self) -> None:
        """Every shopper stops after its current request (a failed test's crowd must not linger)."""
        self._halted.set()
        if self._thread is not None:
            self._thread.join(90)

    def accepted(self) -> dict[str, str]:
        """Reservation id -> user, for every 202 answered so far (repeats included once)."""
        return {r.reservation: r.user for r in list(self.replies) if r.status == 202 and r.reservation}

    def answered(self, status: int, *, sent_after: float = 0.0) -> list[Reply]:
        """The answers with this status to requests sent after `sent_after` (monotonic)."""
        return [r for r in list(self.replies) if r.status == status and r.sent >= sent_after]

    def statuses(self, *, sent_after: float = 0.0, sent_before: float = float("inf")) -> set[int]:
        return {r.status for r in list(self.replies) if sent_after <= r.sent < sent_before}

    def in_flight(self, *, sent_before: float = float("inf")) -> int:
        """Requests sent before `sent_before` (monotonic) that have no answer yet."""
        return sum(1 for sent in list(self._asking.values()) if sent < sent_before)

    def _run(self, path: str) -> None:
        try:
            asyncio.run(self._shop(path))
        except BaseException as error:
            self._failure = error

    async def _shop(self, path: str) -> None:
        tokens = {user: self.sale.token(user) for user in self.users}
        payer = self.sale.payment_credential()  # the shop's payment service pays for the shoppers
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        slots = asyncio.Semaphore(self.concurrency)
        give_up = time.monotonic() + self.deadline
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:

            async def shopper(index: int, user: str) -> None:
                headers = {"Authorization": f"Bearer {tokens[user]}"}
                async with slots:
                    attempt = 0
                    while time.monotonic() < give_up and not self._halted.is_set():
                        if self._paused.is_set():
                            await asyncio.sleep(0.05)
                            continue
                        gateway = self.gateways[(index + attempt) % len(self.gateways)]
                        attempt += 1
                        reply = await self._click(client, gateway, path, user, headers)
                        self.replies.append(reply)
                        self.final[user] = reply
                        if reply.status in DEFINITIVE:
                            if reply.status == 202 and reply.reservation and self.pay_on_accept:
                                await self._pay(client, gateway, payer, reply.reservation, give_up)
                            return
                        if reply.status != NO_ANSWER and reply.status not in self.retry_on:
                            self.unexpected.append(reply)
                            return
                        await asyncio.sleep(0.05 if reply.status == NO_ANSWER else 0.1)  # a shopper's pause

            await asyncio.gather(*(shopper(i, user) for i, user in enumerate(self.users)))

    async def _pay(
        self, client: httpx.AsyncClient, gateway: Gateway, token: str, reservation: str, give_up: float
    ) -> None:
        """Pays until the outcome is final: PAID or EXPIRED."""
        while time.monotonic() < give_up and not self._halted.is_set():
            outcome = await pay(client, gateway, token, reservation)
            self.payments[reservation] = outcome
            if outcome in (PAID, EXPIRED):
                return
            await asyncio.sleep(0.1)

    async def _click(
        self, client: httpx.AsyncClient, gateway: Gateway, path: str, user: str, headers: dict[str, str]
    ) -> Reply:
        sent = time.monotonic()
        ticket = id(headers)  # one request of this shopper at a time: its headers name it
        self._asking[ticket] = sent
        try:
            answer = await client.post(gateway.url + path, json={"quantity": self.quantity}, headers=headers)
        except httpx.TransportError:
            return Reply(user, NO_ANSWER, None, None, gateway.name, sent, time.monotonic())
        finally:
            del self._asking[ticket]
        body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
        return Reply(
            user,
            answer.status_code,
            body.get("reservationId"),
            body.get("expiresAt"),
            gateway.name,
            sent,
            time.monotonic(),
        )


PAID, EXPIRED = "paid", "expired"  # the two final outcomes of a payment


async def pay(client: httpx.AsyncClient, gateway: Gateway, token: str, reservation: str) -> str:
    """The shop's payment service (`token`: its credential) paying one order for its owner: PAID,
    EXPIRED, or what else was said (`not_ordered_yet` while the consumers have not written the
    order, `not_found`, a status, ...)."""
    try:
        answer = await client.post(
            f"{gateway.url}/api/orders/{reservation}/pay", headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.TransportError:
        return "no answer"
    if answer.status_code == 200 and answer.json().get("state") == PAID:
        return PAID
    if answer.headers.get("content-type", "").startswith("application/json"):
        return str(answer.json().get("error", answer.status_code))
    return str(answer.status_code)


def shoppers(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(count)]


# The product's own safety rule, short: the consumers' lost-reservation deadline must be at least
# twice the gateways' publish timeout plus 2 s (ConsumerSettings refuses less). 3 s and 8 s keep
# the scenarios short without running a sale the product calls unsafe.
PUBLISH_TIMEOUT_SECONDS = "3"
LOST_RESERVATION_SECONDS = "8"


def open_sale(
    sale: LocalSale, *, gateways: int = 2, consumers: int = 2, **env: str
) -> tuple[list[Gateway], list[Consumer]]:
    """A live sale: the gate built, the flag on, gateways saying live, consumers running.

    Every process gets `env`, a publish timeout of 3 s and a lost-reservation deadline of 8 s.
    """
    env = {
        "FLASHSALE_PUBLISH_TIMEOUT_SECONDS": PUBLISH_TIMEOUT_SECONDS,
        "FLASHSALE_LOST_RESERVATION_SECONDS": LOST_RESERVATION_SECONDS,
        "PYTHONFAULTHANDLER": "1",
        **env,
    }
    sale.prepare()
    sale.set_open(True)
    started = [sale.start_gateway(None, **env) for _ in range(gateways)]
    for gateway in started:
        gateway.wait_for_state("live")
    return started, [sale.start_consumer(None, **env) for _ in range(consumers)]
