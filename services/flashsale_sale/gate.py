"""The control side of the Redis gate: build it, open it, close it (synchronous; the operator's calls).

The gateways only read the flag and run the reserve script; whoever runs the sale (the operator,
tests, the demo) builds the gate once and flips the flag with these functions, which also tell the
gateways at once on the sale's events channel.
"""

from __future__ import annotations

from dataclasses import dataclass

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


# Sets the flag and tells the gateways; a real change is also logged with Redis' own clock, so the
# history of flips (and the start's skew) can be read back after any restart of whoever flipped it.
_SET_OPEN_LUA = """
local before = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', KEYS[2], ARGV[2])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if before == ARGV[1] or (before == false and ARGV[1] == '0') then return {0, ms} end
redis.call('RPUSH', KEYS[3], ARGV[1] .. ' ' .. ms)
return {1, ms}
"""


@dataclass(frozen=True)
class Flip:
    changed: bool  # False: the flag already said so (nothing logged)
    at_ms: int  # Redis' clock when it was set


def set_open(client: redis.Redis, keys: SaleKeys, is_open: bool) -> Flip:
    """Flips the start flag (the authority the gateways follow) and tells them on the events channel."""
    event = SaleEvent.OPEN if is_open else SaleEvent.CLOSED
    changed, at_ms = client.eval(
        _SET_OPEN_LUA, 3, keys.open, keys.events, keys.flips, _flag(is_open), event.value
    )
    return Flip(bool(changed), int(at_ms))


def flips(client: redis.Redis, keys: SaleKeys) -> list[tuple[bool, int]]:
    """The flag's history: (opened?, Redis time in ms) for every change, oldest first."""
    entries = client.lrange(keys.flips, 0, -1)
    history = []
    for entry in entries:
        value, _, ms = (entry.decode() if isinstance(entry, bytes) else entry).partition(" ")
        history.append((value == "1", int(ms)))
    return history


def _flag(is_open: bool) -> str:
    return "1" if is_open else "0"


def is_open(client: redis.Redis, keys: SaleKeys) -> bool:
    return client.get(keys.open) == b"1"


def remaining(client: redis.Redis, keys: SaleKeys) -> int | None:
    """Units left in the gate, or None when the gate is missing."""
    value = client.get(keys.stock)
    return None if value is None else int(value)


def drop(client: redis.Redis, keys: SaleKeys) -> None:
    """Removes every key of the sale (teardown)."""
    client.delete(*keys.all_keys())
