"""What a buy request says: bearer header and body, parsed without I/O."""

from __future__ import annotations

import pytest

from flashsale_gateway.parsing import BadBody, bearer_token, parse_quantity, token_user
from flashsale_sale import tokens


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        (b"", None),
        (b"Bearer", None),
        (b"Bearer ", None),
        (b"Basic abc", None),
        (b"Bearer abc", "abc"),
        (b"bearer  abc ", "abc"),
        (b"Bearer \xff\xfe", None),
    ],
)
def test_bearer_token(header: bytes | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


def test_token_user_names_the_user_without_verifying() -> None:
    token = tokens.mint(b"k" * 16, "alice.b@x")
    assert token_user(token) == "alice.b@x"
    assert token_user("garbage") is None
    assert token_user(None) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b"", 1), (b"  ", 1), (b'{"quantity": 2}', 2), (b' {"quantity":1}\n', 1), (b'{"quantity": 3.0}', 3)],
)
def test_a_buy_body_is_empty_or_exactly_a_quantity(body: bytes, expected: int) -> None:
    assert parse_quantity(body, limit=3) == expected


@pytest.mark.parametrize(
    "body",
    [b"1", b"[]", b"null", b"{", b"quantity=1", b'{"quantity": "2"}', b'{"quantity": true}',
     b'{"quantity": 0}', b'{"quantity": 4}', b'{"quantity": 1.5}', b'{"quantity": null}', b"\xff",
     b"{}", b'{"x": 1}', b'{"quantity": 1, "x": 1}', b'{"quantity": {"n": 1}}', b'{"quantity": [1]}',
     b'{"quantity": 1e400}', b'{"quantity": NaN}', b'{"quantity": -Infinity}',
     b'{"quantity": ' + b"9" * 4000 + b"}"],
)  # fmt: skip
def test_anything_else_is_a_bad_body(body: bytes) -> None:
    with pytest.raises(BadBody):
        parse_quantity(body, limit=3)


@pytest.mark.parametrize("opening", [b"[", b"{", b'{"quantity":', b'{"a":[', b"[{"])
def test_nesting_under_the_size_cap_is_a_bad_body_not_a_recursion_error(opening: bytes) -> None:
    body = (opening * 4096)[:4096]
    with pytest.raises(BadBody):
        parse_quantity(body, limit=3)
