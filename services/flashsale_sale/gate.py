"""The control side of the Redis gate: build it, open it, close it (synchronous; the operator's calls).

The gateways only read the flag and run the reserve script; whoever runs the sale (the operator,
tests, the demo) builds the gate once and flips the flag with these functions, which also tell the
gateways at once on the sale's events channel.
"""

from __future__ import annotations

import redis

from flashsale_sale.contract import SaleEvent, SaleKeys

# Builds the gate once: a second prewarm of the same sale changes nothing (NX), so a restarted
# operator can never reset a running sale's stock.
_PREWARM_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
return 1
"""


def prewarm(client: redis.Redis, keys: SaleKeys, stock: int) -> bool:
    """Loads `stock` into a gate that does not exist yet; True if it did the loading."""
    return bool(client.eval(_PREWARM_LUA, 2, keys.stock, keys.initial, stock))


def set_open(client: redis.Redis, keys: SaleKeys, is_open: bool) -> None:
    """Flips the start flag (the authority the gateways follow) and tells them on the events channel."""
    pipe = client.pipeline(transaction=True)
    pipe.set(keys.open, "1" if is_open else "0")
    pipe.publish(keys.events, (SaleEvent.OPEN if is_open else SaleEvent.CLOSED).value)
    pipe.execute()


def is_open(client: redis.Redis, keys: SaleKeys) -> bool:
    return client.get(keys.open) == b"1"


def remaining(client: redis.Redis, keys: SaleKeys) -> int | None:
    """Units left in the gate, or None when the gate is missing."""
    value = client.get(keys.stock)
    return None if value is None else int(value)


def drop(client: redis.Redis, keys: SaleKeys) -> None:
    """Removes every key of the sale (teardown)."""
    client.delete(*keys.all_keys())
