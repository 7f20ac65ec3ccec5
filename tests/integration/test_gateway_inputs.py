"""Bad input against a real gateway: every refusal is the right 4xx in JSON, and costs no stock."""

from __future__ import annotations

import time

from flashsale_dev.sale import LocalSale
from flashsale_sale import tokens


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


def test_a_failed_publish_returns_the_stock_at_once_and_answers_503(sale: LocalSale) -> None:
    """The broker is up but the topic does not exist (auto-creation is off): no ack can ever come."""
    sale.topic = f"missing-{sale.sale_id}"
    [gateway] = sale.go_live()
    with gateway.client() as client:
        answer = client.post(sale.order_path, headers=sale.bearer("unlucky"))
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "unavailable"
        metrics = client.get("/metrics").text
    assert sale.gate_remaining() == sale.stock
    assert sale.pending() == 0
    assert sale.buyers() == 0
    assert "flashsale_gateway_publish_failures_total" in metrics
    failures = [
        line for line in metrics.splitlines() if line.startswith("flashsale_gateway_publish_failures_total")
    ]
    assert failures
    assert float(failures[0].rsplit(" ", 1)[1]) == 1.0
