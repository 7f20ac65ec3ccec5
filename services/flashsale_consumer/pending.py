"""Tells the Redis gate which reservations became orders, so they leave its pending hash.

Best effort on purpose: the order is already recorded when this runs, and a reservation left
pending is found later by the recovery (which checks the database before returning any stock). So
a Redis outage is logged and counted, never allowed to stop the consumer - and while Redis is down
the consumer does not wait on it for every batch, but tries again after a pause.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import redis

from flashsale_sale.contract import ORDERED_LUA, SaleKeys

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
        self._keys = [keys.pending]
        self._on_error = on_error
        self._clock = clock
        self._skip_until = 0.0

    @classmethod
    def from_url(cls, url: str, keys: SaleKeys, on_error: Callable[[], None]) -> PendingMarker:
        client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        return cls(client, keys, on_error)

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
