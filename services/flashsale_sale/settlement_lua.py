"""The settlement's Redis scripts: a consumer's claim, the return of expired orders, the gate's rebuild.

The hot path's scripts (reserve, release, ordered) and the key layout are in `contract.py`; these run
after the gate said yes, each atomic, each safe to repeat (docs/settlement.md). The `settled` set is
what makes them exactly-once: a reservation id goes in when its units go back to the gate, and
nothing gives the same id's units back twice, nor turns a given-back reservation into an order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from flashsale_sale.contract import SaleKeys

# The consumer, once per batch BEFORE it writes the orders. KEYS: settled, pending. ARGV: ids.
# Returns, per id, 1 when its units went back already (skip it: no order) or 0 when it is now this
# batch's to write; a pending record gets the claim mark " c", after which the recovery's release
# (of the record as it read it before) leaves it alone, and a repeat attempt answers 202 without a
# publish. An id already claimed or ordered (a reservation published twice) is left as it is. The
# check and the mark are one step, so a release and an order of one reservation never both happen.
CLAIM_LUA: Final = """
local out = {}
for i = 1, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 1 then
    out[i] = 1
  else
    out[i] = 0
    local record = redis.call('HGET', KEYS[2], ARGV[i])
    if record and not string.find(record, ' c$') then
      redis.call('HSET', KEYS[2], ARGV[i], record .. ' c')
    end
  end
end
return out
"""

# Expired orders back to the gate (the settlement loop's outbox), exactly once per reservation.
# KEYS: stock, buyers, pending, settled, events. ARGV: (reservation id, user, quantity) triples.
# Only an id this call adds to `settled` counts: its units go to `stock` if the stock key exists (a
# lost gate is never re-created here: the prewarm's rebuild counts the unit instead), the buyer's
# entry goes if it is this reservation's, and "restocked" is published if the gate was sold out.
# Returns the units added to the stock.
RETURN_LUA: Final = """
local stock = redis.call('GET', KEYS[1])
local returned = 0
for i = 1, #ARGV, 3 do
  local rid, user, qty = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if redis.call('SADD', KEYS[4], rid) == 1 then
    redis.call('HDEL', KEYS[3], rid)
    if redis.call('HGET', KEYS[2], user) == rid then
      redis.call('HDEL', KEYS[2], user)
      redis.call('PUBLISH', KEYS[5], 'released ' .. user)
    end
    if stock then returned = returned + qty end
  end
end
if stock and returned > 0 then
  redis.call('INCRBY', KEYS[1], returned)
  if tonumber(stock) <= 0 then redis.call('PUBLISH', KEYS[5], 'restocked') end
end
return returned
"""

# The prewarm's rebuild of a lost gate, all or nothing, and only while the stock key is still missing.
# KEYS: stock, initial, buyers, pending, settled. ARGV: stock, initial, buyer count n, n (user,
# reservation id) pairs, then the ids that must never be given back or ordered again. Returns 1 if it
# built the gate, 0 if a gate was there.
REBUILD_LUA: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[3], KEYS[4])
local n = tonumber(ARGV[3])
for i = 4, 3 + 2 * n, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
for i = 4 + 2 * n, #ARGV do redis.call('SADD', KEYS[5], ARGV[i]) end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


def claim_keys(keys: SaleKeys) -> list[str]:
    return [keys.settled, keys.pending]


def return_keys(keys: SaleKeys) -> list[str]:
    return [keys.stock, keys.buyers, keys.pending, keys.settled, keys.events]


def rebuild_keys(keys: SaleKeys) -> list[str]:
    return [keys.stock, keys.initial, keys.buyers, keys.pending, keys.settled]


def return_args(expired: Sequence[tuple[str, str, int]]) -> list[str | int]:
    """(reservation id, user, quantity) of expired orders -> RETURN_LUA's arguments."""
    return [value for order in expired for value in order]


def rebuild_args(
    stock: int, initial: int, buyers: Sequence[tuple[str, str]], settled: Sequence[str]
) -> list[str | int]:
    """REBUILD_LUA's arguments: stock, initial stock, (user, reservation) pairs, the settled ids."""
    return [stock, initial, len(buyers), *(value for pair in buyers for value in pair), *settled]
