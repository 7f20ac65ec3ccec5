"""`flashsale load` rehearses a sale: a bounded crowd against a real gateway and consumer, and a report
that agrees with the record - every accepted reservation an order in PostgreSQL, every payment it
counts a paid order, and no unit sold twice."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from flashsale_dev.sale import FLASHSALE, PAYMENT_KEY, USER_TOKEN_KEY, LocalSale, inherited_environment
from flashsale_dev.waiting import wait_for

pytestmark = pytest.mark.integration


def test_a_crowd_sells_out_the_sale_and_the_report_agrees_with_the_database(
    sale: LocalSale, tmp_path: Path
) -> None:
    sale.stock = 40
    gateway = sale.go_live()[0]
    sale.start_consumer()
    report_file = tmp_path / "report.json"
    done = subprocess.run(
        [str(FLASHSALE), "load", "--url", gateway.url, "--sale", sale.reference,
         "--users", "300", "--rate", "400", "--duration", "15", "--bot-share", "0.1",
         "--repeat-share", "0.3", "--payer-share", "0.5", "--settle", "120", "--json", str(report_file)],
        env={**inherited_environment(), "FLASHSALE_USER_TOKEN_KEY": USER_TOKEN_KEY,
             "FLASHSALE_PAYMENT_KEY": PAYMENT_KEY},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    summary = json.loads(report_file.read_text())
    assert "sold out after:" in done.stdout

    accepted = set(summary["reservation_ids"]["accepted"])
    assert summary["accepted"] == {"reservations": 40, "units": 40}  # the whole stock, not one unit more
    assert summary["buy_answers"]["refused"] > 0  # the bots
    assert summary["repeat_clicks"] > 0
    assert summary["repeat_new_reservations"] == 0
    assert summary["sold_out_after_s"] is not None

    orders = wait_for(
        lambda: found if len(found := sale.orders()) >= len(accepted) else None,
        timeout=120,
        what="every accepted reservation an order",
    )
    assert {reservation for reservation, _, _ in orders} == accepted
    assert summary["ordered"]["reservations"] == len(accepted)  # the report saw them all become orders
    with sale.database() as conn:
        query = "SELECT reservation_id FROM orders WHERE sale_id = %s AND state = 'paid'"
        paid = {str(r) for (r,) in conn.execute(query, (sale.sale_id,))}
    assert paid == set(summary["reservation_ids"]["paid"])
    assert 0 < len(paid) < len(accepted)
    assert sum(quantity for _, _, quantity in orders) == sale.stock
