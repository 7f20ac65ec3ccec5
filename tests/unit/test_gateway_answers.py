"""The buy path's answers, its Kafka message and its reservation ids: formatted by hand for speed,
byte for byte what the json module would write (pure)."""

from __future__ import annotations

import json
import re
import uuid

from hypothesis import given
from hypothesis import strategies as st

from flashsale_gateway import answers
from flashsale_gateway.buy import reservation_ids
from flashsale_sale.contract import MESSAGE_VERSION, ReservationMessage, join_records, split_records


def test_a_repeat_click_gets_the_same_answer_as_the_first_from_the_body_alone() -> None:
    first = answers.reservation("ca50ec66-2e9f-4ca9-b421-000000000001", 2, "2026-11-25T21:00:00Z")
    again = answers.reservation_again(first.body)
    assert (again.status, again.headers, again.outcome) == (202, first.headers, "reserved")
    assert again.start_message == first.start_message
    assert again.body_message == first.body_message
    assert json.loads(again.body) == {"reservationId": "ca50ec66-2e9f-4ca9-b421-000000000001",
                                      "state": "reserved", "quantity": 2,
                                      "expiresAt": "2026-11-25T21:00:00Z"}  # fmt: skip


def test_answers_are_compact_json() -> None:
    assert answers.SOLD_OUT.body == b'{"error":"sold_out","message":"the sale is sold out"}'


def test_reservation_ids_are_uuid_shaped_and_never_repeat_within_or_across_processes() -> None:
    one, other = reservation_ids(), reservation_ids()  # two processes' generators: two random prefixes
    ids = [one() for _ in range(1000)] + [other() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    for rid in ids[:3] + ids[-3:]:
        assert str(uuid.UUID(rid)) == rid
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", rid)


@given(rid=st.text(max_size=40), quantity=st.integers(1, 1000), expires=st.none() | st.text(max_size=30))
def test_the_reservation_answer_is_the_compact_json_of_its_fields(
    rid: str, quantity: int, expires: str | None
) -> None:
    payload: dict[str, object] = {"reservationId": rid, "state": "reserved", "quantity": quantity}
    if expires is not None:
        payload["expiresAt"] = expires
    answer = answers.reservation(rid, quantity, expires)
    assert answer.body == json.dumps(payload, separators=(",", ":")).encode()
    assert (b"content-length", str(len(answer.body)).encode()) in answer.headers


@given(sale=st.text(max_size=40), rid=st.text(max_size=40), user=st.text(max_size=40),
       quantity=st.integers(1, 1000), at_ms=st.integers(0, 2**45))  # fmt: skip
def test_the_reservation_message_is_the_compact_json_of_its_fields_and_decodes_back(
    sale: str, rid: str, user: str, quantity: int, at_ms: int
) -> None:
    message = ReservationMessage(sale, rid, user, quantity, at_ms)
    expected = {"v": MESSAGE_VERSION, "sale": sale, "reservationId": rid, "user": user,
                "quantity": quantity, "reservedAtMs": at_ms}  # fmt: skip
    assert message.encode() == json.dumps(expected, separators=(",", ":")).encode()
    assert ReservationMessage.decode(message.encode()) == message


@given(records=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=20), st.text(max_size=20)),
                        min_size=1, max_size=20))  # fmt: skip
def test_the_records_of_one_kafka_message_split_back_whatever_their_text(
    records: list[tuple[str, str, str]],
) -> None:
    """A message carries a gateway batch, one record per line: no text can hold a raw newline."""
    messages = [ReservationMessage(sale, rid, user, 1, 0) for sale, rid, user in records]
    value = join_records([m.encode() for m in messages])
    assert [ReservationMessage.decode(raw) for raw in split_records(value)] == messages
