"""The Redis gate, coalesced: every admitted buyer of one event-loop tick goes into ONE reserve call.

A Redis round trip costs more than the rest of a request; one EVALSHA per tick for all of its buyers
(the script loops over them) turns N round trips into one, and the script is atomic either way.
The reservation time is the script's (Redis' clock), never this process's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from flashsale_sale.contract import RESERVE_LUA, ReserveResult, SaleKeys, buyer_arg, parse_reserve_reply

# A tick under a crowd can hold thousands of buyers; one script call that long would stall Redis
# for everyone else, so a batch is cut at this size.
MAX_BATCH: Final = 512


class GateUnavailable(Exception):
    """Redis could not be asked (down, timeout, refused): the answer is 503, never a 500."""


class ReserveBatcher:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: SaleKeys,
        on_remaining: Callable[[int], None],
        on_call: Callable[[int], None] = lambda _: None,
    ) -> None:
        self._script = client.register_script(RESERVE_LUA)
        self._keys = keys.reserve_keys()
        self._on_remaining = on_remaining
        self._on_call = on_call
        self._waiting: list[tuple[str, asyncio.Future[ReserveResult]]] = []  # (buyer_arg, its future)
        self._running: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def reserve(self, user: str, quantity: int, reservation_id: str) -> asyncio.Future[ReserveResult]:
        """Joins this tick's batch; the future resolves with the buyer's own result."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        if not self._waiting:
            loop.call_soon(self._flush)
        future: asyncio.Future[ReserveResult] = loop.create_future()
        self._waiting.append((buyer_arg(user, quantity, reservation_id), future))
        return future

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        for start in range(0, len(waiting), MAX_BATCH):
            task = asyncio.get_running_loop().create_task(self._call(waiting[start : start + MAX_BATCH]))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _call(self, batch: list[tuple[str, asyncio.Future[ReserveResult]]]) -> None:
        args = [buyer for buyer, _ in batch]
        self._on_call(len(batch))
        try:
            reply = await self._script(keys=self._keys, args=args)
            results, remaining = parse_reserve_reply(reply)
        except (RedisError, OSError, ValueError) as error:
            failure = GateUnavailable(str(error) or type(error).__name__)
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            return
        self._on_remaining(remaining)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def drain(self) -> None:
        """Waits for the calls in flight (graceful stop)."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
