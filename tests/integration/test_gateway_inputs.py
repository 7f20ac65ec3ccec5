"""Bad input against a real gateway: every refusal is the right 4xx in JSON, and costs no stock."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings

from flashsale_dev.http_inputs import (
    WIRE_FRAMINGS,
    Framing,
    HttpRequest,
    Requests,
    check_answer,
    weighted,
)
from flashsale_dev.http_sending import HttpAnswer, parse_answer, send_on_socket, wire_bytes
from flashsale_dev.sale import Gateway, LocalSale
from flashsale_sale import tokens


def on_the_wire(gateway: Gateway, request: HttpRequest) -> HttpAnswer:
    """The request as raw bytes on its own connection (httpx would refuse to send most of these)."""
    address = urlsplit(gateway.url)
    answer = send_on_socket(address.hostname or "127.0.0.1", address.port or 80, request)
    assert answer is not None, f"no answer to {request.method} {request.target[:80]!r}"
    return answer


def test_bad_tokens_get_401_in_json_and_take_no_stock(sale: LocalSale) -> None:
    [gateway] = sale.go_live()
    path = sale.order_path
    good = sale.token("eve")
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    expired = tokens.mint(sale.sale_token_key.encode(), "eve", ttl_seconds=1, now=time.time() - 60)
    wrong_key = tokens.mint(b"some-other-platform-key-000", "eve")
    headers = {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {good}"},
        "malformed": {"Authorization": "Bearer not-a-token"},
        "forged": {"Authorization": f"Bearer {forged}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "wrong key": {"Authorization": f"Bearer {wrong_key}"},
        "forged user": {"Authorization": f"Bearer {good.replace('.eve.', '.bob.')}"},
    }
    with gateway.client() as client:
        for case, header in headers.items():
            answer = client.post(path, headers=header)
            assert answer.status_code == 401, case
            assert answer.headers["content-type"] == "application/json", case
            assert answer.json()["error"] == "unauthorized", case
            assert answer.json()["message"], case
    assert sale.gate_remaining() == sale.stock


def test_guessed_paths_get_404_before_and_during_the_sale(sale: LocalSale) -> None:
    sale.prepare()
    gateway = sale.start_gateway()
    real = sale.order_path
    guesses = ["/api/buy/", "/api/buy/x", real + "x", real[:-1], real.upper(), "/api/buy/" + sale.sale_id]
    with gateway.client() as client:
        for phase in ("before", "during"):
            for guess in guesses:
                answer = client.post(guess, headers=sale.bearer("guesser"))
                assert answer.status_code == 404, (phase, guess)
                assert answer.json()["error"] == "not_found"
            if phase == "before":
                assert client.post(real, headers=sale.bearer("guesser")).status_code == 404
                sale.set_open(True)
                gateway.wait_for_state("live")
    assert sale.gate_remaining() == sale.stock


def test_malformed_bodies_get_4xx_and_quantities_above_the_limit_get_422(sale: LocalSale) -> None:
    sale.per_user_limit = 2
    [gateway] = sale.go_live()
    path = sale.order_path
    bodies: dict[str, tuple[bytes, int]] = {
        "not json": (b"quantity=1", 422),
        "broken json": (b'{"quantity": ', 422),
        "not an object": (b"[1]", 422),
        "string quantity": (b'{"quantity": "1"}', 422),
        "boolean quantity": (b'{"quantity": true}', 422),
        "zero": (b'{"quantity": 0}', 422),
        "above the limit": (b'{"quantity": 3}', 422),
        "oversized": (b'{"quantity": 1, "pad": "' + b"x" * 20_000 + b'"}', 413),
        "binary": (bytes(range(256)), 422),
        "deeply nested, under the size cap": (b"[" * 4000, 422),
        "a nested quantity": (b'{"quantity": {"n": 1}}', 422),
        "an empty object": (b"{}", 422),
        "another key beside the quantity": (b'{"quantity": 1, "coupon": "FREE"}', 422),
    }
    with gateway.client() as client:
        for case, (body, expected) in bodies.items():
            headers = sale.bearer("picky") | {"Content-Type": "application/json"}
            answer = client.post(path, content=body, headers=headers)
            assert answer.status_code == expected, (case, answer.text)
            assert answer.json()["error"] in {"invalid_request", "payload_too_large"}, case
        unknown = client.get("/no/such/route")
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "not_found"
        wrong_method = client.delete("/api/status")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"] == "method_not_allowed"
        assert client.get("/api/orders/not-a-reservation", headers=sale.bearer("picky")).status_code == 404
    assert sale.gate_remaining() == sale.stock


def test_a_failed_publish_answers_503_and_keeps_the_unit_for_the_buyers_retry(sale: LocalSale) -> None:
    """The broker is up but the topic does not exist (auto-creation is off): no ack can ever come.

    No gateway gives a unit back after a failed publish (another attempt at the same reservation may
    still be acknowledged, docs/settlement.md): the unit stays pending for the buyer, whose retry
    publishes it again, or the lost-reservation recovery returns it."""
    sale.topic = f"missing-{sale.sale_id}"
    [gateway] = sale.go_live()
    with gateway.client() as client:
        answer = client.post(sale.order_path, headers=sale.bearer("unlucky"))
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "unavailable"
        assert int(answer.headers["retry-after"]) >= 1
        metrics = gateway.metrics()  # the admin port
    assert sale.gate_remaining() == sale.stock - 1
    assert sale.pending() == 1
    assert sale.buyers() == 1
    failures = [
        line for line in metrics.splitlines() if line.startswith("flashsale_gateway_publish_failures_total")
    ]
    assert failures
    assert float(failures[0].rsplit(" ", 1)[1]) == 1.0
    assert "flashsale_stock_returned_units_total" not in metrics


def test_a_token_with_non_ascii_bytes_gets_401_on_every_route_that_reads_tokens(sale: LocalSale) -> None:
    [gateway] = sale.go_live()
    real = sale.token("mallory")
    routes = [("POST", sale.order_path), ("GET", "/api/orders/r-1"), ("POST", "/api/orders/r-1/pay")]
    for junk in (b"\xff", "\u00e9".encode(), b"\x80\x81"):
        for token in (b"v1.mallory.99999999999." + junk, real.encode()[:-2] + junk, real.encode() + junk):
            for method, path in routes:
                request = HttpRequest(
                    method, path.encode(), ((b"authorization", b"Bearer " + token),), b"", "length"
                )
                answer = on_the_wire(gateway, request)
                assert answer.status == 401, (method, path, token, answer.body)
                check_answer(answer.status, answer.headers, answer.body, head=False, store_asked=False)
    assert sale.gate_remaining() == sale.stock


def test_bodies_cut_short_or_framed_otherwise_are_read_as_sent_and_cut_ones_take_no_stock(
    sale: LocalSale,
) -> None:
    [gateway] = sale.go_live()
    path = sale.order_path.encode()

    def buy(user: str, body: bytes, framing: Framing, chunks: tuple[int, ...] = ()) -> HttpAnswer:
        bearer = ((b"authorization", f"Bearer {sale.token(user)}".encode()),)
        return on_the_wire(gateway, HttpRequest("POST", path, bearer, body, framing, chunks))

    cut = buy("gone", b'{"quantity": 1}', "cut_short")  # declares 10 bytes more, then stops sending
    assert cut.status == 422, cut.body
    assert json.loads(cut.body)["error"] == "invalid_request"
    assert sale.gate_remaining() == sale.stock  # a buy the client abandoned mid-body took nothing
    shorter = buy("liar", b'{"quantity": 1}', "declared_less")  # Content-Length one byte short
    assert shorter.status == 422, shorter.body
    chunked = buy("chunky", b'{"quantity": 1}', "chunked", (3, 9))
    assert chunked.status == 202, chunked.body
    assert sale.gate_remaining() == sale.stock - 1


def test_hostile_requests_on_every_route_get_no_5xx_and_every_error_is_json(sale: LocalSale) -> None:
    """A bounded, seeded batch of hostile requests against a real gateway, its stores up: no 5xx at all,
    and every unit that left the gate went to a buyer who was told 202."""
    sale.per_user_limit = 3
    [gateway] = sale.go_live()
    users = [f"fuzz-{i}" for i in range(8)]
    drawn = Requests(sale.order_path, [sale.token(user) for user in users], WIRE_FRAMINGS)
    reserved: dict[str, int] = {}

    @settings(
        max_examples=100,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=weighted((2, drawn.buys), (1, drawn.token_checks), (2, drawn.anything)))
    def answered_within_the_contract(request: HttpRequest) -> None:
        answer = on_the_wire(gateway, request)
        check_answer(
            answer.status, answer.headers, answer.body, head=request.method == "HEAD", store_asked=False
        )
        if answer.status == 202:
            reservation = json.loads(answer.body)
            reserved[reservation["reservationId"]] = reservation["quantity"]

    answered_within_the_contract()
    assert reserved  # the batch reached the gate too, not only the refusals in front of it
    assert sale.stock - (sale.gate_remaining() or 0) == sum(reserved.values())


def test_head_on_every_get_route_is_its_get_without_a_body(sale: LocalSale) -> None:
    [gateway] = sale.go_live()
    address = urlsplit(gateway.url)
    for path in ("/", "/status.js", "/api/status", "/healthz", "/openapi.json"):
        data, _ = wire_bytes(HttpRequest("HEAD", path.encode(), (), b"", "length"))
        received = bytearray()
        with socket.create_connection((address.hostname, address.port), timeout=60) as connection:
            connection.sendall(data)
            while chunk := connection.recv(65536):
                received += chunk
        head = parse_answer(bytes(received), head=True)
        get = on_the_wire(gateway, HttpRequest("GET", path.encode(), (), b"", "length"))
        assert head is not None, path
        assert (head.status, head.headers["content-type"]) == (get.status, get.headers["content-type"]), path
        assert bytes(received).endswith(b"\r\n\r\n"), path  # the headers, and nothing after them
