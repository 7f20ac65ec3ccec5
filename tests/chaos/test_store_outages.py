"""The stores go away (issue 8, acceptance 5 and 6).

5. Redis restarts without persistence mid-sale: the gate is gone. The gateways fail closed (no new
   reservation is accepted, nothing answers 500), the consumers still write every accepted
   reservation to the record, and once the topic is drained `flashsale prewarm` rebuilds the gate
   from the record; the sale then sells exactly its stock, nothing oversold.
6. PostgreSQL crashes and restarts mid-sale: the consumers keep retrying their batch, commit no
   offset past what was written while it is away, and every accepted order is in the record after.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from chaos.crowd import Crowd, open_sale, shoppers
from chaos.whole import assert_sale_is_whole, committed_messages, group_lag, topic_messages
from flashsale_dev import faults
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.sale import Consumer, LocalSale
from flashsale_dev.settlement import prewarm
from flashsale_dev.waiting import wait_for


@pytest.mark.timeout(300)
def test_redis_restarted_without_persistence_fails_closed_and_is_rebuilt_from_the_record(
    sale: LocalSale, platform: LocalPlatform
) -> None:
    sale.stock = 1_000
    gateways, _ = open_sale(sale, gateways=2, consumers=2)
    # While the gate is gone a gateway may answer 503 (no gate) or 404 (no open flag: paused).
    crowd = Crowd(
        sale, gateways, shoppers("buyer", 2_500), retry_on=frozenset({404, 429, 503}), concurrency=50
    )
    crowd.start()
    wait_for(lambda: len(crowd.accepted()) >= 200, timeout=120, what="200 reservations accepted")

    faults.restart_without_persistence(platform.redis)
    lost = time.monotonic()
    accepted_before = set(crowd.accepted())
    assert sale.gate_remaining() is None
    wait_for(
        lambda: crowd.answered(503, sent_after=lost),
        timeout=60,
        what="a 503 from a gateway without a gate",
        describe=lambda: (
            f"answers since the loss: {Counter(r.status for r in crowd.replies if r.sent >= lost)}"
        ),
    )

    # Every request sent before the loss has its answer (so no publish from before is in flight),
    # and the consumers have written everything published: the record is complete.
    wait_for(
        lambda: crowd.in_flight(sent_before=lost) == 0,
        timeout=60,
        what="every request sent before the loss answered",
    )
    wait_for(lambda: group_lag(sale) == 0, timeout=120, what="the topic drained into the record")
    # Fail closed, proven over the whole loss: every request sent since has its answer, and none
    # was a new reservation; nothing wrote the gate back. Then the operator rebuilds it.
    crowd.pause()
    wait_for(lambda: crowd.in_flight() == 0, timeout=60, what="the crowd's requests answered")
    new_while_lost = [
        r
        for r in crowd.replies
        if r.status == 202 and r.sent >= lost and r.reservation not in accepted_before
    ]
    assert not new_while_lost, f"reservations accepted while the gate was gone: {new_while_lost[:5]}"
    assert sale.gate_remaining() is None, "something wrote the lost gate back before the prewarm"
    _prewarm(sale)
    sale.set_open(True)  # the operator's flag: it went with the rest of Redis
    crowd.resume()

    crowd.join()
    assert 500 not in crowd.statuses()
    record = assert_sale_is_whole(sale, crowd.accepted())
    assert record.live_units == sale.stock, record.describe()  # the demand was above the stock


@pytest.mark.timeout(300)
def test_a_postgres_restart_mid_sale_commits_no_offset_past_what_was_written(
    sale: LocalSale, platform: LocalPlatform
) -> None:
    sale.stock = 1_500
    gateways, consumers = open_sale(sale, gateways=2, consumers=2)
    crowd = Crowd(sale, gateways, shoppers("buyer", 3_000), concurrency=30).start()
    wait_for(lambda: sale.order_count() >= 200, timeout=120, what="200 orders written")

    with faults.down(platform.postgres, crash=True):
        wait_for(lambda: _db_errors(consumers) >= 1, timeout=60, what="a consumer failing to write")
        committed = committed_messages(sale)
        errors = _db_errors(consumers)
        # The consumers retry (with backoff) while the broker keeps taking reservations...
        wait_for(lambda: _db_errors(consumers) >= errors + 3, timeout=60, what="the consumers retrying")
        # ...and commit no offset while nothing can be written.
        assert committed_messages(sale) == committed, "offsets were committed while the database was down"

    crowd.join()
    record = assert_sale_is_whole(sale, crowd.accepted())
    assert record.live_units == sale.stock, record.describe()
    # Every message (a gateway batch of reservations) is committed in the end, each after its orders.
    wait_for(
        lambda: committed_messages(sale) == topic_messages(sale), timeout=60, what="every offset committed"
    )


def _db_errors(consumers: list[Consumer]) -> float:
    return sum(c.metric("flashsale_consumer_db_errors_total") for c in consumers)


def _prewarm(sale: LocalSale) -> None:
    """`flashsale prewarm` as the operator calls it after a loss; the test already waited out the
    publishes in flight (every request from before the loss was answered), so no settle time."""
    done = prewarm(sale, "--settle-seconds", "0")
    assert done.returncode == 0, f"prewarm failed ({done.returncode}): {done.stdout}{done.stderr}"
    assert "rebuilt" in done.stdout, done.stdout
