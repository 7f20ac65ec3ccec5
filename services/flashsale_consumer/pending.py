"""The consumer's two calls to the Redis gate per batch: claim before the write, mark ordered after.

The claim (settlement_lua.CLAIM_LUA, one call per batch) is required: it says which reservations
were given back already (their ids are in `settled`: they must not become orders) and marks the
others as being written, so no release can give their units back any more. When Redis cannot
answer, the runner retries it and commits nothing. When the gate's keys are gone (a Redis restart)
nothing is settled and everything is written: the record wins, and the prewarm's rebuild counts it.

Marking ordered is best effort on purpose: the order is already recorded when this runs, and a
reservation left pending is found later by the recovery (which checks the database before returning
any stock, and marks the orders it finds). So a failure here is logged and counted, never allowed
to stop the consumer - and after one the consumer does not mark for a pause.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import redis

from flashsale_sale.contract import ORDERED_LUA, SaleKeys
from flashsale_sale.settlement_lua import CLAIM_LUA, claim_keys

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5.0


class PendingMarker:
    def __init__(
        self,
        client: redis.Redis,
        keys: SaleKeys,
        on_error: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._script = client.register_script(ORDERED_LUA)
        self._claim = client.register_script(CLAIM_LUA)
        self._claim_keys = claim_keys(keys)
        self._keys = [keys.pending]
        self._on_error = on_error
        self._clock = clock
        self._skip_until = 0.0

    @classmethod
    def from_url(cls, url: str, keys: SaleKeys, on_error: Callable[[], None]) -> PendingMarker:
        client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        return cls(client, keys, on_error)

    def claim(self, reservation_ids: Sequence[str]) -> list[bool]:
        """Per id: True when it was given back (skip it). Raises redis.RedisError: retry, commit nothing."""
        if not reservation_ids:
            return []
        flags = self._claim(keys=self._claim_keys, args=list(reservation_ids))
        self._skip_until = 0.0  # Redis answers again: mark ordered again too
        return [int(flag) == 1 for flag in flags]

    def mark_ordered(self, reservation_ids: Sequence[str]) -> bool:
        """Removes the ids from the pending hash (idempotent); False if Redis was not reached."""
        if not reservation_ids:
            return True
        if self._clock() < self._skip_until:
            self._on_error()
            return False
        try:
            self._script(keys=self._keys, args=list(reservation_ids))
        except redis.RedisError as error:
            self._on_error()
            self._skip_until = self._clock() + RETRY_AFTER_SECONDS
            log.warning(
                "redis unreachable, %d ordered reservations stay pending (the recovery settles them): %s",
                len(reservation_ids),
                error,
            )
            return False
        return True
