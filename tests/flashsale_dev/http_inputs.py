"""Hostile HTTP requests for the gateway, and the contract every answer to them must keep.

Hypothesis strategies that draw whole requests (method, path, query, headers, body and how the body
is framed) as one model, `HttpRequest`, that flashsale_dev.http_sending sends two ways (an ASGI call
in this process, or bytes on a socket to a real gateway), and `check_answer`, the promise: every
4xx/5xx is the JSON `{"error", "message"}` with `Content-Type: application/json`, and a 5xx only
where a store was genuinely asked.

Used by tests/unit/test_gateway_bad_input.py (the app in process, its stores down) and
tests/integration/test_gateway_inputs.py (a real gateway process, its stores up).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import quote, unquote_to_bytes

from hypothesis import strategies as st

Framing = Literal["length", "none", "chunked", "cut_short", "declared_less", "declared_junk"]
WIRE_FRAMINGS: Final[tuple[Framing, ...]] = ("length", "chunked", "cut_short", "declared_less")

MAX_BUY_BODY: Final = 4096
RESERVATION_ID: Final = re.compile(r"[A-Za-z0-9-]{1,64}")
_TOKEN_CHARS: Final = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# What an HTTP/1.1 parser passes on in a header value (RFC 9110 field-vchar, SP, HTAB, obs-text):
_FIELD_BYTES: Final = bytes([9, *range(0x20, 0x7F), *range(0x80, 0x100)])


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: bytes  # the request-target on the wire: percent-encoded path, then `?query`
    headers: tuple[tuple[bytes, bytes], ...]  # names lower-case; no framing headers (see `framing`)
    body: bytes
    framing: Framing
    chunks: tuple[int, ...] = ()  # where the body is cut into messages / chunks
    declared: bytes = b""  # the Content-Length of `declared_junk`

    @property
    def path(self) -> str:
        """The path as the server hands it to the app: percent-decoded, UTF-8 with replacement (granian)."""
        raw = self.target.partition(b"?")[0]
        return unquote_to_bytes(raw).decode("utf-8", "replace")

    @property
    def query(self) -> bytes:
        return self.target.partition(b"?")[2]

    def first(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)


# ---- the strategies ----


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, drawn in proportion to its weight (st.one_of leans to whichever it likes)."""
    slots = [index for index, (weight, _) in enumerate(choices) for _ in range(weight)]
    return st.sampled_from(slots).flatmap(lambda index: choices[index][1])


def _percent_encoded(raw: bytes) -> str:
    return quote(raw, safe="")


_segment = st.one_of(
    st.binary(max_size=24).map(_percent_encoded),
    st.text(max_size=24).map(lambda text: quote(text.encode(), safe="")),
    st.from_regex(RESERVATION_ID, fullmatch=True),
    st.sampled_from(["", ".", "..", "pay", "%2F", "%00", "%ff", "%", "%zz", "a%2Fpay"]),
)


_methods = st.one_of(
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    st.text(_TOKEN_CHARS, min_size=1, max_size=12),
)


def _field_value(max_size: int = 64) -> st.SearchStrategy[bytes]:
    """A header value an HTTP/1.1 parser accepts: visible bytes, non-ASCII (obs-text) included."""
    return st.binary(max_size=max_size).map(
        lambda raw: bytes(_FIELD_BYTES[byte % len(_FIELD_BYTES)] for byte in raw).strip(b" \t")
    )


def _mutated(token: str) -> st.SearchStrategy[bytes]:
    """A real token with one change: a character replaced, inserted or dropped, non-ASCII included."""
    encoded = token.encode()
    return st.tuples(
        st.integers(0, len(encoded)), st.sampled_from(["replace", "insert", "drop"]), _field_value(3)
    ).map(lambda change: _mutate(encoded, *change))


def _mutate(token: bytes, at: int, how: str, piece: bytes) -> bytes:
    if how == "drop":
        return token[:at] + token[at + 1 :]
    return token[:at] + piece + token[at + (how == "replace") :]


def _full_width(token: str) -> bytes:
    """The token in full-width letters (U+FF01...): what it says, but none of it ASCII."""
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in token).encode()


def authorizations(valid_tokens: list[str]) -> st.SearchStrategy[bytes]:
    """Authorization values: real tokens, near misses, other schemes, garbage, huge ones."""
    token = st.sampled_from(valid_tokens)
    scheme = st.sampled_from([b"Bearer ", b"bearer ", b"BEARER  ", b"Bearer", b"Basic ", b""])
    return weighted(
        (1, token.map(lambda t: b"Bearer " + t.encode())),
        (3, st.tuples(scheme, token.flatmap(_mutated)).map(b"".join)),
        (1, st.tuples(scheme, _field_value()).map(b"".join)),
        (1, st.tuples(scheme, token).map(lambda pair: pair[0] + _full_width(pair[1]))),
        (1, st.integers(600, 20_000).map(lambda n: b"Bearer v1." + b"a" * n)),
    )


_if_none_match = st.one_of(
    _field_value(),
    st.lists(st.one_of(_field_value(12), st.just(b"*"), st.just(b'W/"x"')), max_size=20).map(b", ".join),
)


def headers(
    valid_tokens: list[str], values: st.SearchStrategy[bytes]
) -> st.SearchStrategy[tuple[tuple[bytes, bytes], ...]]:
    """Other headers: more Authorization, If-None-Match, common ones, made-up ones; sometimes dozens."""
    named = st.one_of(
        st.tuples(st.just(b"authorization"), authorizations(valid_tokens)),
        st.tuples(st.just(b"if-none-match"), _if_none_match),
        st.tuples(st.sampled_from([b"content-type", b"accept", b"cookie", b"origin", b"expect"]), values),
        st.tuples(st.text(_TOKEN_CHARS, min_size=1, max_size=20).map(lambda n: n.lower().encode()), values),
    )
    many = st.tuples(named, st.integers(20, 80)).map(lambda repeated: (repeated[0],) * repeated[1])
    return weighted((8, st.lists(named, max_size=8).map(tuple)), (1, many))


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=10)
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    )


def bodies() -> st.SearchStrategy[bytes]:
    """Buy bodies, good and bad: the contract's own, near misses, other JSON, deep nesting, bytes, too big."""
    quantity = st.one_of(st.integers(-3, 6), st.integers(), _json_values())
    return weighted(
        (2, st.sampled_from([b"", b"  \r\n", b"{}", b'{"quantity": 1}', b'{"quantity":2.0}'])),
        (2, quantity.map(lambda q: json.dumps({"quantity": q}).encode())),
        (
            1,
            st.dictionaries(st.sampled_from(["quantity", "x", "Quantity"]), _json_values(), max_size=3).map(
                lambda data: json.dumps(data).encode()
            ),
        ),
        (1, _json_values().map(lambda data: json.dumps(data).encode())),
        (
            2,
            st.tuples(st.sampled_from([b"[", b'{"a":', b'{"quantity":[', b"[{}"]), st.integers(50, 4000)).map(
                lambda nest: (nest[0] * nest[1])[:MAX_BUY_BODY]
            ),
        ),
        (1, st.binary(max_size=300)),
        (
            1,
            st.integers(MAX_BUY_BODY + 1, 3 * MAX_BUY_BODY).map(
                lambda n: b'{"quantity": 1, "pad": "' + b"x" * n + b'"}'
            ),
        ),
        (1, st.just('{"quantity": 1}'.encode("utf-16"))),
    )


FIXED_PATHS: Final = (
    "/", "/status.js", "/api/status", "/healthz", "/readyz", "/metrics", "/openapi.json", "*",
    "/api/status/", "/healthz/", "/openapi.json/",
)  # fmt: skip
_QUERY: Final = st.one_of(st.just(""), st.binary(max_size=40).map(lambda raw: "?" + _percent_encoded(raw)))
_JUNK_LENGTHS: Final = st.sampled_from([b"abc", b"-1", b"+5", b"1e3", b" 12", b"\xd9\xa3", b"9" * 30])


class Requests:
    """The request strategies for one sale (its order path, some real tokens), built once.

    `buys`: the order path, mostly POST with a real token: bodies and framing of every kind.
    `token_checks`: orders and payments with every kind of Authorization.
    `anything`: any route (a near miss of each too), any method, any headers, any body.
    """

    def __init__(
        self,
        order_path: str,
        valid_tokens: list[str],
        framings: tuple[Framing, ...],
        header_values: st.SearchStrategy[bytes] | None = None,
    ) -> None:
        """`header_values`: what other headers hold (default: what an HTTP/1.1 parser passes on)."""
        self._framings = st.sampled_from(framings)
        self._bodies = bodies()
        self._headers = headers(valid_tokens, _field_value() if header_values is None else header_values)
        real = st.sampled_from(valid_tokens).map(lambda token: b"Bearer " + token.encode())
        mostly_real = st.lists(weighted((3, real), (1, authorizations(valid_tokens))), min_size=1, max_size=2)
        any_authorization = st.lists(authorizations(valid_tokens), max_size=2)
        buy_path = weighted(
            (4, st.just(order_path)),
            (1, _segment.map(lambda segment: order_path + segment)),
            (1, _segment.map(lambda segment: "/api/buy/" + segment)),
        )
        order_id = st.one_of(st.from_regex(RESERVATION_ID, fullmatch=True), _segment)
        order_path_of = st.one_of(
            order_id.map(lambda rid: f"/api/orders/{rid}"),
            order_id.map(lambda rid: f"/api/orders/{rid}/pay"),
            st.integers(200, 3000).map(lambda n: "/api/orders/" + "a" * n),  # very long
        )
        routes = st.one_of(
            buy_path,
            order_path_of,
            st.sampled_from(FIXED_PATHS),
            st.sampled_from(["/", "//", "/api/status/", "/api/", "/api/buy/", "/status.js/"]).flatmap(
                lambda prefix: _segment.map(lambda segment: prefix + segment)
            ),
        )
        self.buys = self._requests(weighted((5, st.just("POST")), (1, _methods)), buy_path, mostly_real)
        self.token_checks = self._requests(
            st.sampled_from(["GET", "POST", "HEAD"]),
            order_path_of,
            st.lists(authorizations(valid_tokens), min_size=1, max_size=2),
        )
        self.anything = self._requests(_methods, routes, any_authorization)

    def _requests(
        self,
        methods: st.SearchStrategy[str],
        paths: st.SearchStrategy[str],
        authorization: st.SearchStrategy[list[bytes]],
    ) -> st.SearchStrategy[HttpRequest]:
        return st.builds(
            _request,
            method=methods,
            target=st.tuples(paths, _QUERY).map(lambda parts: "".join(parts).encode()),
            authorization=authorization,
            others=self._headers,
            body=self._bodies,
            framing=self._framings,
            cuts=st.lists(st.integers(0, 4 * MAX_BUY_BODY), max_size=4),
            declared=_JUNK_LENGTHS,
        )


def _request(
    *,
    method: str,
    target: bytes,
    authorization: list[bytes],
    others: tuple[tuple[bytes, bytes], ...],
    body: bytes,
    framing: Framing,
    cuts: list[int],
    declared: bytes,
) -> HttpRequest:
    chunks = tuple(sorted({cut for cut in cuts if cut <= len(body)}))
    headers = tuple((b"authorization", value) for value in authorization) + others
    return HttpRequest(method, target, headers, body, framing, chunks, declared)


# ---- the contract ----


def is_buy_body(body: bytes, limit: int) -> bool:
    """docs/gateway.md: empty (quantity 1) or exactly `{"quantity": n}`, an integer 1 <= n <= limit."""
    if not body.strip():
        return True
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return False
    if not isinstance(data, dict) or set(data) != {"quantity"}:
        return False
    quantity = data["quantity"]
    if isinstance(quantity, float) and quantity.is_integer():
        quantity = int(quantity)
    return type(quantity) is int and 1 <= quantity <= limit


def check_answer(status: int, headers: dict[str, str], body: bytes, *, head: bool, store_asked: bool) -> None:
    """The promise for any request: a well-formed status; every error JSON; a 5xx only from a store."""
    assert 200 <= status <= 599, status
    assert not 300 <= status < 400 or status == 304, (status, headers)  # no redirects: 304 on the page only
    if status >= 500:
        assert store_asked, f"{status} for a request that asks no store: {body[:300]!r}"
        assert status == 503, status
    if status < 400:
        return
    assert headers.get("content-type", "").startswith("application/json"), (status, headers)
    if head and not body:
        return  # the server drops a HEAD answer's body
    error = json.loads(body)
    assert isinstance(error, dict), error
    assert set(error) == {"error", "message"}, error
    assert isinstance(error["error"], str), error
    assert isinstance(error["message"], str), error
    if status == 503:
        assert error["error"] == "unavailable", error
