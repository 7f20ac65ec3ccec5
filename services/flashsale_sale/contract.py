"""The sale's contract: what the gateway, the consumers and the operator agree on.

Everything that names a Redis key, runs a Lua script, shapes a Kafka message or derives the order
path lives here and nowhere else.

Redis layout: every key of one sale shares the hash tag `{<sale id>}`, so a sale's gate lives on
one Redis Cluster shard and its multi-key scripts never fail with CROSSSLOT. The sale id is the
FlashSale resource's uid: two sales named alike in two namespaces never share a key, a topic or a
row.

| key                       | type   | what                                                         |
|---------------------------|--------|--------------------------------------------------------------|
| fs:{id}:open              | string | the start flag: "1" accepts orders; anything else refuses    |
| fs:{id}:stock             | string | units left in the gate; absent = gate not built (fail closed)|
| fs:{id}:initial           | string | the stock the gate was built with (for reconciliation)       |
| fs:{id}:buyers            | hash   | user id -> reservation id (one reservation per user per sale)|
| fs:{id}:pending           | hash   | reservation id -> "user qty reserved_ms[ last_ms][ c]": not  |
|                           |        | yet an order; last_ms: the last repeat attempt that published |
|                           |        | it again; " c": a consumer claimed it (is writing its order)  |
| fs:{id}:settled           | set    | reservation ids whose units went back to the gate            |
| fs:{id}:flips             | list   | every flip of the start flag: "<1|0> <Redis time, ms>"       |
| fs:{id}:events            | pubsub | "open", "closed", "soldout", "restocked", "released <user>"  |

The settlement scripts (return of expired orders, the consumer's claim, the rebuild) are in
`flashsale_sale.settlement_lua`; docs/settlement.md tells the life of a unit through all of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any, Final, NamedTuple

MESSAGE_VERSION: Final = 1
ORDER_PATH_PREFIX: Final = "/api/buy/"


@dataclass(frozen=True)
class SaleKeys:
    """The Redis keys of one sale, all under its hash tag."""

    sale_id: str

    @property
    def tag(self) -> str:
        return "{" + self.sale_id + "}"

    @property
    def open(self) -> str:
        return f"fs:{self.tag}:open"

    @property
    def stock(self) -> str:
        return f"fs:{self.tag}:stock"

    @property
    def initial(self) -> str:
        return f"fs:{self.tag}:initial"

    @property
    def buyers(self) -> str:
        return f"fs:{self.tag}:buyers"

    @property
    def pending(self) -> str:
        return f"fs:{self.tag}:pending"

    @property
    def settled(self) -> str:
        return f"fs:{self.tag}:settled"

    @property
    def events(self) -> str:
        return f"fs:{self.tag}:events"

    @property
    def flips(self) -> str:
        return f"fs:{self.tag}:flips"

    def all_keys(self) -> list[str]:
        """Every key the sale owns (for teardown and tests); the events channel is not a key."""
        return [self.open, self.stock, self.initial, self.buyers, self.pending, self.settled, self.flips]

    def reserve_keys(self) -> list[str]:
        return [self.open, self.stock, self.buyers, self.pending, self.events]

    def release_keys(self) -> list[str]:
        return [self.stock, self.buyers, self.pending, self.events, self.settled]


class SaleEvent(StrEnum):
    """What is published on the sale's events channel; gateways refresh their local state on each."""

    OPEN = "open"
    CLOSED = "closed"
    SOLD_OUT = "soldout"
    RESTOCKED = "restocked"
    RELEASED = "released"  # "released <user>": that user's reservation went back; drop cached answers


def released_user(event: str) -> str | None:
    """The user a "released <user>" event names, or None for any other event."""
    kind, _, user = event.partition(" ")
    return user if kind == SaleEvent.RELEASED and user else None


class Outcome(StrEnum):
    """One buyer's answer from the reserve script."""

    RESERVED = "reserved"  # a new reservation was recorded and stock decremented: publish it
    # This user's reservation is pending and no consumer has read its message: nobody knows that any
    # publish of it succeeded (a gateway may have died before the ack). The gate touched its record
    # (the attempt's time); the same record is published again, and answered 202 only after the ack.
    UNCONFIRMED = "unconfirmed"
    CLAIMED = "claimed"  # pending, and a consumer read its message: it is in Kafka, 202 as it is
    EXISTING = "existing"  # this user's reservation is no longer pending: an order (ask the record)
    SOLD_OUT = "soldout"  # no stock left
    INSUFFICIENT = "insufficient"  # some stock left, but less than the quantity asked
    CLOSED = "closed"  # the start flag is off
    NO_GATE = "nogate"  # the stock key is missing: the gate was lost or never built (fail closed)


# One call decides a whole batch of buyers (the gateway coalesces one event-loop tick's requests).
# KEYS: open, stock, buyers, pending, events. ARGV: one "<user> <quantity> <new reservation id>" per
# buyer (buyer_arg; one argument per buyer, not three: the client packs a third as many, and a
# malformed one fails the whole call before anything is written).
# Returns, per buyer, {outcome, reservation id or "", quantity, reserved at (ms) or 0}, flattened, then
# the remaining stock. The time is Redis' own (TIME; Redis 7 replicates a script's effects, so a
# non-deterministic command is allowed): every reservation's time comes from one clock, whatever
# the gateways' clocks say. A buyer who holds a pending reservation no consumer has claimed gets it
# back as "unconfirmed", its record touched ("user qty reserved_ms now_ms": the recovery judges a
# reservation's age by its last attempt); a claimed one comes back as "claimed", untouched.
# The buyer check comes before the stock check and the decrement (pitfall 2), all in one script
# (pitfalls 1, 8); the pending record is written atomically with the decrement (pitfall 4). The gate
# (the stock key) is checked before the flag: a Redis that lost its keys answers "nogate" (503), never
# "closed" (which a gateway would take for a paused sale).
RESERVE_LUA: Final = """
local open = redis.call('GET', KEYS[1])
local stock = redis.call('GET', KEYS[2])
local clock = redis.call('TIME')
local now = string.format('%d', tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000))
local out = {}
local sold_out_now = false
local buyers = {}
for i = 1, #ARGV do
  local user, qty, rid = string.match(ARGV[i], '^(%S+) (%d+) (%S+)$')
  if not user then return redis.error_reply('malformed buyer argument ' .. i) end
  buyers[i] = {user, tonumber(qty), rid}
end
local function answer(outcome, rid, qty, at)
  table.insert(out, outcome); table.insert(out, rid); table.insert(out, qty); table.insert(out, at)
end
for _, buyer in ipairs(buyers) do
  local user, qty, rid = buyer[1], buyer[2], buyer[3]
  if not stock then
    answer('nogate', '', 0, 0)
  elseif open ~= '1' then
    answer('closed', '', 0, 0)
  else
    local existing = redis.call('HGET', KEYS[3], user)
    if existing then
      local record = redis.call('HGET', KEYS[4], existing)
      if not record then
        answer('existing', existing, 0, 0)
      else
        local owner, held, reserved = string.match(record, '^(%S+) (%d+) (%d+)')
        if string.find(record, ' c$') then
          answer('claimed', existing, tonumber(held), tonumber(reserved))
        else
          redis.call('HSET', KEYS[4], existing, owner .. ' ' .. held .. ' ' .. reserved .. ' ' .. now)
          answer('unconfirmed', existing, tonumber(held), tonumber(reserved))
        end
      end
    elseif tonumber(stock) <= 0 then
      answer('soldout', '', 0, 0)
    elseif tonumber(stock) < qty then
      answer('insufficient', '', 0, 0)
    else
      stock = tostring(redis.call('DECRBY', KEYS[2], qty))
      redis.call('HSET', KEYS[3], user, rid)
      redis.call('HSET', KEYS[4], rid, user .. ' ' .. qty .. ' ' .. now)
      if tonumber(stock) == 0 then sold_out_now = true end
      answer('reserved', rid, qty, tonumber(now))
    end
  end
end
table.insert(out, tonumber(stock or '-1'))
if sold_out_now then redis.call('PUBLISH', KEYS[5], 'soldout') end
return out
"""

# Gives a reservation's units back, exactly once: only while it is still pending (not yet an order).
# Run by the lost-reservation recovery alone (no gateway gives stock back: docs/settlement.md).
# KEYS: stock, buyers, pending, events, settled. ARGV: reservation id, force ("1": also when a
# consumer claimed it; "0": a claimed reservation is becoming an order, its unit stays), and
# optionally the pending record exactly as the caller read it: if the record changed since (a repeat
# attempt touched it - its publish may be in flight -, or a consumer claimed it), nothing is released.
# Returns the units returned (0 if none). The id goes into `settled` (a consumer that reads its
# message later skips it) and the buyer's entry goes, so the user may buy again; "released <user>"
# tells the gateways to forget their cached answer. A missing stock key stays missing (a lost gate
# is rebuilt by the prewarm alone, never written back piecemeal).
RELEASE_LUA: Final = """
local record = redis.call('HGET', KEYS[3], ARGV[1])
if not record then return 0 end
if ARGV[3] and record ~= ARGV[3] then return 0 end
if ARGV[2] ~= '1' and string.find(record, ' c$') then return 0 end
local user, qty = string.match(record, '^(%S+) (%d+)')
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
if redis.call('HGET', KEYS[2], user) == ARGV[1] then redis.call('HDEL', KEYS[2], user) end
if redis.call('EXISTS', KEYS[1]) == 1 then
  local before = tonumber(redis.call('GET', KEYS[1]))
  redis.call('INCRBY', KEYS[1], qty)
  if before <= 0 then redis.call('PUBLISH', KEYS[4], 'restocked') end
end
redis.call('PUBLISH', KEYS[4], 'released ' .. user)
return tonumber(qty)
"""

# Marks reservations as ordered (the consumer, after its database commit): they leave `pending`.
# KEYS: pending. ARGV: reservation ids. Idempotent.
ORDERED_LUA: Final = """
if #ARGV == 0 then return 0 end
return redis.call('HDEL', KEYS[1], unpack(ARGV))
"""


def buyer_arg(user: str, quantity: int, reservation_id: str) -> str:
    """One buyer's argument of RESERVE_LUA (user ids, tokens.USER_ID, and reservation ids hold no spaces)."""
    return f"{user} {quantity:d} {reservation_id}"


class ReserveResult(NamedTuple):
    """One buyer's result (a tuple: a batch of hundreds is parsed per call, on the hot path)."""

    outcome: Outcome
    reservation_id: str
    quantity: int
    reserved_ms: int  # the reservation's time (Redis' clock), for RESERVED, UNCONFIRMED and CLAIMED


_OUTCOMES: Final[dict[str | bytes, Outcome]] = {
    **{o.value: o for o in Outcome},
    **{o.value.encode(): o for o in Outcome},
}


def parse_reserve_reply(reply: list[Any]) -> tuple[list[ReserveResult], int]:
    """The script's flat reply -> one result per buyer, and the stock left (-1 if there is no gate)."""
    results = []
    for i in range(0, len(reply) - 1, 4):
        outcome, reservation, quantity, reserved_ms = reply[i : i + 4]
        try:
            known = _OUTCOMES[outcome]
        except (KeyError, TypeError):
            raise ValueError(f"unknown reserve outcome {outcome!r}") from None
        results.append(ReserveResult(known, _text(reservation), int(quantity), int(reserved_ms)))
    return results, int(reply[-1])


class PendingRecord(NamedTuple):
    """A pending record: "user qty reserved_ms", then the last repeat attempt's time (since a
    repeat published it again) and " c" once a consumer claimed it."""

    user: str
    quantity: int
    reserved_ms: int
    last_attempt_ms: int  # the reservation time until a repeat attempt touched it
    claimed: bool


def parse_pending_record(record: bytes | str) -> PendingRecord:
    fields = _text(record).split(" ")
    claimed = fields[-1] == "c"
    if claimed:
        fields.pop()
    user, quantity, reserved_ms = fields[0], int(fields[1]), int(fields[2])
    last_attempt_ms = int(fields[3]) if len(fields) > 3 else reserved_ms
    return PendingRecord(user, quantity, reserved_ms, last_attempt_ms, claimed)


def parse_pending(record: bytes | str) -> tuple[str, int, int]:
    """A pending record -> (user, quantity, reserved at in ms); the touch and the claim are ignored."""
    user, quantity, reserved_ms = _text(record).split(" ")[:3]
    return user, int(quantity), int(reserved_ms)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ---- Kafka ----


def topic_name(sale_id: str) -> str:
    """The sale's own topic on a shared broker: unique per sale, valid as a Kafka topic name."""
    return f"flashsale.{sale_id}.reservations"


def consumer_group(sale_id: str) -> str:
    return f"flashsale.{sale_id}.orders"


# A Kafka message carries the reservations of one gateway batch: one JSON record per line (the
# records never hold a raw newline: the encoder escapes it). One publish, one broker ack and one
# delivery report per batch instead of per buyer; a message of a single record is the same format.
RECORD_SEPARATOR: Final = b"\n"
# What one message may hold: far below the broker's 1 MB message limit even with 128-character
# user ids (a record is at most ~350 bytes).
MAX_RECORDS_PER_MESSAGE: Final = 512


def join_records(records: list[bytes]) -> bytes:
    """One Kafka message's value from encoded reservation records (encode_record)."""
    return RECORD_SEPARATOR.join(records)


def split_records(value: bytes) -> list[bytes]:
    """A Kafka message's value -> its records (empty lines are records too: they are poison)."""
    return value.split(RECORD_SEPARATOR)


def encode_record(
    sale_id: str, reservation_id: str, user_id: str, quantity: int, reserved_at_ms: int
) -> bytes:
    """One reservation record: compact JSON, byte for byte what json.dumps(..., separators=(",", ":"))
    writes, formatted directly (the stdlib's encoder costs more than the rest of a gateway's publish)."""
    return (
        f'{{"v":{MESSAGE_VERSION:d},"sale":{_json_string(sale_id)},'
        f'"reservationId":{_json_string(reservation_id)},"user":{_json_string(user_id)},'
        f'"quantity":{quantity:d},"reservedAtMs":{reserved_at_ms:d}}}'
    ).encode()


@dataclass(frozen=True)
class ReservationMessage:
    """One accepted reservation, as a record of the sale's Kafka messages (see RECORD_SEPARATOR)."""

    sale_id: str
    reservation_id: str
    user_id: str
    quantity: int
    reserved_at_ms: int

    def encode(self) -> bytes:
        return encode_record(
            self.sale_id, self.reservation_id, self.user_id, self.quantity, self.reserved_at_ms
        )

    @classmethod
    def decode(cls, raw: bytes) -> ReservationMessage:
        """One record; raises ValueError for anything that is not a version-1 reservation."""
        try:
            data = json.loads(raw)
            if data["v"] != MESSAGE_VERSION:
                raise ValueError(f"unknown message version {data['v']!r}")
            message = cls(
                sale_id=str(data["sale"]),
                reservation_id=str(data["reservationId"]),
                user_id=str(data["user"]),
                quantity=int(data["quantity"]),
                reserved_at_ms=int(data["reservedAtMs"]),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"not a reservation message: {error}") from error
        if message.quantity < 1:
            raise ValueError("a reservation holds at least one unit")
        return message


# ---- the order path ----


def order_path(order_path_key: bytes, sale_id: str) -> str:
    """The secret path that takes orders: derived from the sale's own key, revealed only while live.

    Nobody can guess it before the start (it is an HMAC of the sale id under a per-sale key), and a
    new sale has a new one, so a bot that learned last sale's path learns nothing.
    """
    digest = hmac.new(order_path_key, sale_id.encode(), hashlib.sha256).digest()
    return ORDER_PATH_PREFIX + base64.urlsafe_b64encode(digest[:18]).decode()
