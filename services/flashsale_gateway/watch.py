"""Keeps the StatusBoard in step with Redis: the sale's events channel, and polling as the fallback.

"released <user>" drops that user's cached answer (their reservation went back, they may buy again).
Pub/sub brings a flip within a millisecond or two, but a dropped subscription loses messages
silently; the poll (flag and stock in one MGET every `flag_poll_seconds`) bounds how stale the
board can ever be. Both only ever read Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from flashsale_gateway.state import StatusBoard
from flashsale_sale.contract import SaleEvent, SaleKeys, released_user

log = logging.getLogger(__name__)


class SaleWatcher:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: SaleKeys,
        board: StatusBoard,
        poll_seconds: float,
        *,
        forget: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._client = client
        self._keys = keys
        self._board = board
        self._poll_seconds = poll_seconds
        self._forget = forget  # a user's reservation went back: drop this replica's cached answer
        self._tasks: list[asyncio.Task[None]] = []
        self.last_read_ok = 0.0  # monotonic time of the last successful read of the flag

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._poll()), loop.create_task(self._listen())]
        # The clock alone ends a sale: be exact at endsAt rather than up to one poll late.
        loop.call_later(max(0.0, self._board.ends_at - time.time()), self._board.refresh)
        loop.call_later(max(0.0, self._board.starts_at - time.time()), self._board.refresh)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def read_now(self) -> None:
        """One read of the flag and the stock into the board."""
        flag, stock = await self._client.mget(self._keys.open, self._keys.stock)
        if flag is None and stock is None and self._board.loaded:
            # Redis lost the sale's keys (a restart without persistence): a lost gate is not a paused
            # sale. Keep the flag as last seen, so buyers reach the gate and get 503 (nogate) until the
            # prewarm rebuilds it; a deliberate close writes "0", it never deletes the flag.
            self._board.observe(self._board.flag_open, None)
        else:
            self._board.observe(flag == b"1", None if stock is None else int(stock))
        self.last_read_ok = time.monotonic()

    async def _poll(self) -> None:
        while True:
            try:
                await self.read_now()
            except (RedisError, OSError, ValueError) as error:
                log.debug("flag poll failed: %s", error)
                self._board.refresh()
            await asyncio.sleep(self._poll_seconds)

    async def _listen(self) -> None:
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self._keys.events)
                    await self.read_now()  # whatever happened while we were not subscribed
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if message is not None:
                            await self._on_event(message.get("data"))
            except (RedisError, OSError, ValueError) as error:
                log.warning("sale events subscription lost (%s); resubscribing", error)
                await asyncio.sleep(0.5)

    async def _on_event(self, data: object) -> None:
        event = data.decode() if isinstance(data, bytes) else str(data)
        user = released_user(event)
        if user is not None:
            self._forget(user)  # the stock moved too, but a restock (if any) has an event of its own
            return
        if event == SaleEvent.SOLD_OUT:
            self._board.set_sold_out(True)
        elif event == SaleEvent.RESTOCKED:
            self._board.set_sold_out(False)
        await self.read_now()  # "open", "closed" or anything else: read the truth again
