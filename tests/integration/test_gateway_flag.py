"""The start flag is the authority: two real gateway processes follow it both ways, and buy for real."""

from __future__ import annotations

import httpx

from flashsale_dev.sale import LocalSale


def test_gateways_refuse_before_the_flip_accept_after_it_and_refuse_again_after_a_flip_back(
    sale: LocalSale,
) -> None:
    assert sale.prepare()  # a fresh gate
    gateways = [sale.start_gateway(), sale.start_gateway()]
    path = sale.order_path

    for index, gateway in enumerate(gateways):
        before = gateway.status()
        assert before["state"] == "scheduled"
        assert before["orderPath"] is None
        answer = httpx.post(gateway.url + path, headers=sale.bearer(f"early-{index}"), timeout=10)
        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"
    assert sale.gate_remaining() == sale.stock  # nobody got through

    sale.set_open(True)
    for gateway in gateways:
        live = gateway.wait_for_state("live")
        assert live["orderPath"] == path
    for index, gateway in enumerate(gateways):
        answer = httpx.post(gateway.url + path, headers=sale.bearer(f"buyer-{index}"), timeout=30)
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert body["state"] == "reserved"
        assert body["quantity"] == 1
        assert body["expiresAt"].endswith("Z")
    assert sale.gate_remaining() == sale.stock - 2

    sale.set_open(False)
    for gateway in gateways:
        gateway.wait_for_state("scheduled")  # the flag off, before the start
        assert gateway.status()["orderPath"] is None
        answer = httpx.post(gateway.url + path, headers=sale.bearer("late"), timeout=10)
        assert answer.status_code == 404
    assert sale.gate_remaining() == sale.stock - 2


def test_repeat_clicks_get_the_same_reservation_on_either_gateway_and_the_owner_can_read_it(
    sale: LocalSale,
) -> None:
    first, second = sale.go_live(gateways=2)
    path = sale.order_path

    answers = [
        httpx.post(g.url + path, headers=sale.bearer("alice"), timeout=30) for g in (first, first, second)
    ]
    assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]
    reservation = answers[0].json()["reservationId"]
    assert {a.json()["reservationId"] for a in answers} == {reservation}
    assert sale.gate_remaining() == sale.stock - 1  # one unit, however many clicks

    mine = httpx.get(f"{first.url}/api/orders/{reservation}", headers=sale.bearer("alice"), timeout=10)
    assert mine.status_code == 200, mine.text
    assert mine.json()["state"] == "reserved"
    assert mine.json()["reservationId"] == reservation
    theirs = httpx.get(f"{first.url}/api/orders/{reservation}", headers=sale.bearer("mallory"), timeout=10)
    assert theirs.status_code == 404
    assert theirs.json()["error"] == "not_found"


def test_the_last_units_sell_out_and_then_every_attempt_gets_410(sale: LocalSale) -> None:
    sale.stock = 3
    sale.per_user_limit = 2
    [gateway] = sale.go_live()
    path = sale.order_path

    with gateway.client() as client:
        two = client.post(path, headers=sale.bearer("u1"), json={"quantity": 2})
        assert two.status_code == 202, two.text
        assert two.json()["quantity"] == 2
        too_many = client.post(path, headers=sale.bearer("u2"), json={"quantity": 2})
        assert too_many.status_code == 409
        assert too_many.json()["error"] == "insufficient_stock"
        last = client.post(path, headers=sale.bearer("u3"), json={"quantity": 1})
        assert last.status_code == 202, last.text
        gone = client.post(path, headers=sale.bearer("u4"))
        assert gone.status_code == 410
        assert gone.json()["error"] == "sold_out"
        assert (
            client.post(path, headers=sale.bearer("u1")).json()["reservationId"]
            == two.json()["reservationId"]
        )
        assert gateway.wait_for_state("soldout")["orderPath"] is None
    assert sale.gate_remaining() == 0
