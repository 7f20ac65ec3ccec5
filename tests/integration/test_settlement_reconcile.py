"""`flashsale reconcile` as a process on a real sale: 0 when every unit is counted once, 1 and a
readable diff when Redis or the ledger lose or double a unit, every number in the JSON."""

from __future__ import annotations

from flashsale_dev.sale import LocalSale
from flashsale_dev.settlement import flashsale, reconcile, reserve
from flashsale_dev.waiting import wait_for


def test_reconcile_passes_then_names_each_mismatch(sale: LocalSale) -> None:
    sale.stock = 50
    sale.per_user_limit = 2
    sale.prepare()
    sale.set_open(True)
    ordered = reserve(sale, [f"u-{i}" for i in range(10)], quantity=2)
    reserve(sale, ["still-pending"])  # no message yet: in flight
    sale.produce(ordered)
    consumer = sale.start_consumer()
    wait_for(lambda: sale.order_count() == 10, timeout=120, what="10 orders", describe=consumer.output)

    code, numbers = reconcile(sale)
    assert code == 0, numbers
    assert numbers["initial"] == 50
    assert numbers["gate_stock"] == 50 - 21
    assert numbers["pending_units"] == 1
    assert numbers["live_units"] == 20
    assert numbers["ledger"] == 30
    assert numbers["unaccountedUnits"] == 0
    assert numbers["orders"] == {"ordered": 10}

    with sale.redis() as client:
        client.decrby(sale.keys.stock, 3)  # three units vanish from the gate
    done = flashsale(sale, "reconcile", "--sale", sale.sale_id)
    assert done.returncode == 1
    assert "MISMATCH" in done.stdout
    assert "PROBLEM: 3 units unaccounted" in done.stdout
    assert "gate stock (Redis)" in done.stdout

    with sale.redis() as client:
        client.incrby(sale.keys.stock, 3)
    with sale.database(autocommit=True) as conn:
        conn.execute("UPDATE stock_ledger SET remaining = remaining - 1 WHERE sale_id = %s", (sale.sale_id,))
    code, numbers = reconcile(sale)
    assert code == 1
    assert numbers["problems"] == ["the ledger says 29 remaining, the orders say 30 (50 - 20 not expired)"]

    unknown = flashsale(sale, "reconcile", "--sale", "no-such-sale")
    assert unknown.returncode == 1
    assert "no sale" in unknown.stderr
