"""One polled batch, as pure data: which reservations to write, which records are poison, what to commit.

A message holds one or more reservation records (contract.split_records). Nothing here talks to
Kafka, PostgreSQL or Redis, so the rules (a poison record is skipped, its message's other records
are written and its offset is committed; a reservation of another sale or above the per-user
limit is poison; a reservation seen twice in one batch is written once) are tested without
middleware.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from flashsale_sale.contract import ReservationMessage, split_records
from flashsale_sale.tokens import USER_ID

# What the database and the Redis records can hold: printable, no spaces (pending records are
# space-separated), no NUL (PostgreSQL text refuses it), within bigint and timestamp range.
_RESERVATION_ID = re.compile(r"[\x21-\x7e]{1,200}")
_MAX_RESERVED_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


class Record(Protocol):
    """What we read from a Kafka message (confluent_kafka.Message satisfies it)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class Poison:
    """A record that is not a reservation of this sale: logged, counted, skipped, its offset committed."""

    topic: str
    partition: int
    offset: int
    reason: str
    record: int = 0  # its place in the message (0 for a message of one record)


@dataclass
class DecodedBatch:
    reservations: list[ReservationMessage] = field(default_factory=list)
    poison: list[Poison] = field(default_factory=list)
    duplicates: int = 0  # the same reservation twice in this batch (a redelivery): written once


def decode_batch(records: Iterable[Record], sale_id: str, per_user_limit: int) -> DecodedBatch:
    """Decodes every record; never raises, whatever the bytes (one poison message must not stop the sale)."""
    batch = DecodedBatch()
    seen: set[str] = set()
    for record in records:
        for place, raw in enumerate(split_records(record.value() or b"")):
            try:
                message = ReservationMessage.decode(raw)
                _check(message, sale_id, per_user_limit)
            except (ValueError, OverflowError, RecursionError) as error:
                where = (record.topic() or "", record.partition() or 0, record.offset() or 0)
                batch.poison.append(Poison(*where, str(error)[:200], place))
                continue
            if message.reservation_id in seen:
                batch.duplicates += 1
                continue
            seen.add(message.reservation_id)
            batch.reservations.append(message)
    return batch


def _check(message: ReservationMessage, sale_id: str, per_user_limit: int) -> None:
    """Rules the gateway already enforces, checked again so a stray producer cannot bend them."""
    if message.sale_id != sale_id:
        raise ValueError(f"reservation of sale {message.sale_id!r}, not {sale_id!r}")
    if message.quantity > per_user_limit:
        raise ValueError(f"quantity {message.quantity} above the per-user limit {per_user_limit}")
    if not _RESERVATION_ID.fullmatch(message.reservation_id):
        raise ValueError("reservation id is not 1-200 printable characters without spaces")
    if not USER_ID.fullmatch(message.user_id):
        raise ValueError("user id is not a valid user id")
    if not 0 <= message.reserved_at_ms <= _MAX_RESERVED_MS:
        raise ValueError("reservedAtMs out of range")


def order_parameters(
    sale_id: str, payment_timeout_seconds: int, reservations: Sequence[ReservationMessage]
) -> dict[str, Any]:
    """The parameters of db.INSERT_ORDERS: one array per column, so a whole batch is one statement."""
    return {
        "sale": sale_id,
        "payment_timeout": payment_timeout_seconds,
        "reservations": [r.reservation_id for r in reservations],
        "users": [r.user_id for r in reservations],
        "quantities": [r.quantity for r in reservations],
        "reserved_ms": [r.reserved_at_ms for r in reservations],
    }


def next_offsets(records: Iterable[Record]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the offset to commit: one past the last record seen, poison included."""
    offsets: dict[tuple[str, int], int] = {}
    for record in records:
        topic, partition, offset = record.topic(), record.partition(), record.offset()
        if topic is None or partition is None or offset is None or offset < 0:
            continue
        key = (topic, partition)
        offsets[key] = max(offsets.get(key, 0), offset + 1)
    return offsets
