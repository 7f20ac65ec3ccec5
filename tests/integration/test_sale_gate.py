"""The contract's Lua gate under real concurrency, against the real Redis.

Many threads and processes hit one sale with repeat clicks and quantities (per-user limit 2): the
stock is never oversold, no user gets two reservations, and the pending and buyers hashes agree with
the stock (initial = remaining + units pending). Releases return stock exactly once. The time of
a reservation is Redis' own, and a repeat click on a pending, unclaimed reservation touches it.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from flashsale_dev.pytest_plugin import RedisDatabase
from flashsale_sale import gate
from flashsale_sale.contract import (
    RELEASE_LUA,
    RESERVE_LUA,
    Outcome,
    ReserveResult,
    SaleKeys,
    buyer_arg,
    parse_pending,
    parse_pending_record,
    parse_reserve_reply,
)
from flashsale_sale.settlement_lua import CLAIM_LUA, claim_keys

Decision = tuple[str, str, str, int]  # user, outcome, reservation id, quantity


def shop(url: str, sale_id: str, worker: int, calls: int, users: int) -> list[Decision]:
    """One shopper-simulating worker: batches of up to 8 buyers per call, as a gateway coalesces them."""
    client = redis.Redis.from_url(url)
    keys = SaleKeys(sale_id)
    script = client.register_script(RESERVE_LUA)
    rng = random.Random(worker)
    decisions: list[Decision] = []
    for _ in range(calls):
        buyers = [(f"user-{rng.randrange(users)}", rng.choice((1, 2))) for _ in range(rng.randint(1, 8))]
        args = [buyer_arg(user, quantity, uuid.uuid4().hex) for user, quantity in buyers]
        results, remaining = parse_reserve_reply(script(keys=keys.reserve_keys(), args=args))
        assert remaining >= 0
        decisions += [
            (user, r.outcome.value, r.reservation_id, r.quantity)
            for (user, _), r in zip(buyers, results, strict=True)
        ]
    client.close()
    return decisions


def _shop_in_process(arguments: tuple[str, str, int, int, int], queue: multiprocessing.Queue[object]) -> None:
    queue.put(shop(*arguments))


def open_sale(redis_db: RedisDatabase, stock: int) -> SaleKeys:
    keys = SaleKeys(f"gate-{uuid.uuid4().hex[:8]}")
    assert gate.prewarm(redis_db.client, keys, stock)
    gate.set_open(redis_db.client, keys, True)
    return keys


def assert_consistent(redis_db: RedisDatabase, keys: SaleKeys, stock: int, decisions: list[Decision]) -> None:
    client = redis_db.client
    remaining = gate.remaining(client, keys)
    assert remaining is not None
    assert remaining >= 0
    reserved_units = sum(q for _, outcome, _, q in decisions if outcome == Outcome.RESERVED)
    assert reserved_units == stock - remaining  # never oversold, never leaked

    by_user: dict[str, set[str]] = defaultdict(set)
    for user, outcome, reservation, _ in decisions:
        if outcome in (Outcome.RESERVED, Outcome.UNCONFIRMED, Outcome.CLAIMED, Outcome.EXISTING):
            by_user[user].add(reservation)
    assert all(len(reservations) == 1 for reservations in by_user.values())  # one reservation per user

    buyers = {_text(k): _text(v) for k, v in client.hgetall(keys.buyers).items()}
    pending = {_text(k): parse_pending(v) for k, v in client.hgetall(keys.pending).items()}
    assert {user: next(iter(r)) for user, r in by_user.items()} == buyers
    assert {rid: user for rid, (user, _, _) in pending.items()} == {rid: user for user, rid in buyers.items()}
    assert all(1 <= quantity <= 2 for _, quantity, _ in pending.values())
    assert stock == remaining + sum(quantity for _, quantity, _ in pending.values())
    assert int(client.get(keys.initial) or 0) == stock


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def test_threads_never_oversell_nor_give_a_user_two_reservations(redis_db: RedisDatabase) -> None:
    stock = 500
    keys = open_sale(redis_db, stock)
    with ThreadPoolExecutor(max_workers=16) as pool:
        runs = pool.map(lambda w: shop(redis_db.url, keys.sale_id, w, 150, 1_500), range(16))
        decisions = [d for run in runs for d in run]
    assert sum(outcome == Outcome.UNCONFIRMED for _, outcome, _, _ in decisions) > 0  # repeat clicks happened
    assert sum(outcome == Outcome.SOLD_OUT for _, outcome, _, _ in decisions) > 0  # demand beat the stock
    assert_consistent(redis_db, keys, stock, decisions)


def test_processes_never_oversell_nor_give_a_user_two_reservations(redis_db: RedisDatabase) -> None:
    stock = 300
    keys = open_sale(redis_db, stock)
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[object] = context.Queue()
    workers = [
        context.Process(target=_shop_in_process, args=((redis_db.url, keys.sale_id, w, 120, 800), queue))
        for w in range(4)
    ]
    for worker in workers:
        worker.start()
    runs = [queue.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    decisions: list[Decision] = [d for run in runs for d in run]  # type: ignore[attr-defined]
    assert_consistent(redis_db, keys, stock, decisions)


def test_a_repeat_click_gets_the_same_reservation_and_no_stock(redis_db: RedisDatabase) -> None:
    keys = open_sale(redis_db, 10)
    script = redis_db.client.register_script(RESERVE_LUA)
    first, _ = parse_reserve_reply(script(keys=keys.reserve_keys(), args=[buyer_arg("alice", 2, "r-1")]))
    again, remaining = parse_reserve_reply(
        script(keys=keys.reserve_keys(), args=[buyer_arg("alice", 1, "r-2")])
    )
    assert first[0].outcome == Outcome.RESERVED
    # Pending and unclaimed: nobody knows its publish succeeded, so the gateway publishes it again -
    # the same reservation, quantity and reservation time.
    assert again[0] == (Outcome.UNCONFIRMED, "r-1", 2, first[0].reserved_ms)
    assert remaining == 8


def redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_the_reservation_time_is_redis_own_clock_not_the_callers(redis_db: RedisDatabase) -> None:
    """Every pod's clock may be off; the gate's time is Redis' (TIME), and no caller can set it."""
    client = redis_db.client
    keys = open_sale(redis_db, 10)
    script = client.register_script(RESERVE_LUA)
    before = redis_ms(client)
    [result], _ = parse_reserve_reply(script(keys=keys.reserve_keys(), args=[buyer_arg("alice", 1, "r-1")]))
    after = redis_ms(client)
    assert result.outcome == Outcome.RESERVED
    assert before <= result.reserved_ms <= after
    assert parse_pending_record(client.hget(keys.pending, "r-1") or b"") == (
        "alice", 1, result.reserved_ms, result.reserved_ms, False,
    )  # fmt: skip
    # A time passed the way the gateways used to pass theirs is no buyer: the whole call fails.
    with pytest.raises(redis.ResponseError, match="malformed buyer argument 1"):
        script(keys=keys.reserve_keys(), args=[1_000, buyer_arg("bob", 1, "r-2")])


def test_a_repeat_touches_an_unclaimed_reservation_and_leaves_a_claimed_one_as_it_is(
    redis_db: RedisDatabase,
) -> None:
    client = redis_db.client
    keys = open_sale(redis_db, 10)
    script = client.register_script(RESERVE_LUA)

    def attempt(user: str) -> ReserveResult:
        [result], _ = parse_reserve_reply(
            script(keys=keys.reserve_keys(), args=[buyer_arg(user, 1, "r-new")])
        )
        return result

    first = attempt("alice")
    before = redis_ms(client)
    repeat = attempt("alice")
    touched = parse_pending_record(client.hget(keys.pending, first.reservation_id) or b"")
    assert repeat == (Outcome.UNCONFIRMED, first.reservation_id, 1, first.reserved_ms)
    assert touched.reserved_ms == first.reserved_ms  # the reservation's time never changes
    assert touched.last_attempt_ms >= before  # the attempt's does: the recovery counts from it

    # A consumer read its message (the claim): it is published, a repeat changes nothing.
    assert client.eval(CLAIM_LUA, 2, *claim_keys(keys), first.reservation_id) == [0]
    claimed = client.hget(keys.pending, first.reservation_id)
    assert attempt("alice") == (Outcome.CLAIMED, first.reservation_id, 1, first.reserved_ms)
    assert client.hget(keys.pending, first.reservation_id) == claimed

    # Its order written, it leaves `pending`: the gate says "existing" and the record has the rest.
    client.hdel(keys.pending, first.reservation_id)
    assert attempt("alice") == (Outcome.EXISTING, first.reservation_id, 0, 0)
    assert gate.remaining(client, keys) == 9


def test_the_recoverys_release_is_refused_once_the_record_changed(redis_db: RedisDatabase) -> None:
    """RELEASE with the record as the recovery read it: a repeat attempt's touch in between wins."""
    client = redis_db.client
    keys = open_sale(redis_db, 10)
    script = client.register_script(RESERVE_LUA)
    script(keys=keys.reserve_keys(), args=[buyer_arg("alice", 1, "r-1")])
    seen = client.hget(keys.pending, "r-1") or b""
    script(keys=keys.reserve_keys(), args=[buyer_arg("alice", 1, "r-2")])  # the repeat touches it
    assert client.eval(RELEASE_LUA, 5, *keys.release_keys(), "r-1", "1", seen) == 0
    assert gate.remaining(client, keys) == 9
    now = client.hget(keys.pending, "r-1") or b""
    assert client.eval(RELEASE_LUA, 5, *keys.release_keys(), "r-1", "1", now) == 1  # as read: released
    assert gate.remaining(client, keys) == 10


def test_release_returns_the_stock_exactly_once_when_run_twice_at_once(redis_db: RedisDatabase) -> None:
    stock = 200
    keys = open_sale(redis_db, stock)
    script = redis_db.client.register_script(RESERVE_LUA)
    args = [buyer_arg(f"user-{i}", 1 + i % 2, f"r-{i}") for i in range(100)]
    results, remaining = parse_reserve_reply(script(keys=keys.reserve_keys(), args=args))
    assert remaining == stock - 150

    release = redis_db.client.register_script(RELEASE_LUA)
    barrier = threading.Barrier(2)

    def release_twice_at_once(reservation: str) -> list[int]:
        def one(_: int) -> int:
            barrier.wait(timeout=60)
            return int(release(keys=keys.release_keys(), args=[reservation]))

        with ThreadPoolExecutor(max_workers=2) as pool:
            return sorted(pool.map(one, range(2)))

    for result in results:
        assert release_twice_at_once(result.reservation_id) == [0, result.quantity]
    assert gate.remaining(redis_db.client, keys) == stock
    assert redis_db.client.hlen(keys.pending) == 0
    assert redis_db.client.hlen(keys.buyers) == 0  # released users may buy again


def test_closed_while_the_flag_is_off(redis_db: RedisDatabase) -> None:
    keys = SaleKeys(f"gate-{uuid.uuid4().hex[:8]}")
    gate.prewarm(redis_db.client, keys, 5)
    script = redis_db.client.register_script(RESERVE_LUA)
    for flag in (None, False):
        if flag is not None:
            gate.set_open(redis_db.client, keys, flag)
        results, remaining = parse_reserve_reply(
            script(keys=keys.reserve_keys(), args=[buyer_arg("alice", 1, "r-1")])
        )
        assert results[0].outcome == Outcome.CLOSED
        assert remaining == 5
    assert not gate.is_open(redis_db.client, keys)
    assert redis_db.client.hlen(keys.buyers) == 0


def test_no_gate_when_the_stock_key_is_missing(redis_db: RedisDatabase) -> None:
    keys = SaleKeys(f"gate-{uuid.uuid4().hex[:8]}")
    gate.set_open(redis_db.client, keys, True)
    script = redis_db.client.register_script(RESERVE_LUA)
    results, remaining = parse_reserve_reply(
        script(keys=keys.reserve_keys(), args=[buyer_arg("alice", 1, "r-1")])
    )
    assert results[0].outcome == Outcome.NO_GATE
    assert remaining == -1
    assert redis_db.client.hlen(keys.pending) == 0


def test_a_malformed_buyer_argument_fails_the_whole_call_before_anything_is_written(
    redis_db: RedisDatabase,
) -> None:
    keys = open_sale(redis_db, 10)
    script = redis_db.client.register_script(RESERVE_LUA)
    good = buyer_arg("alice", 1, "r-1")
    with pytest.raises(redis.ResponseError, match="malformed buyer argument 2"):
        script(keys=keys.reserve_keys(), args=[good, "bob 1"])
    assert gate.remaining(redis_db.client, keys) == 10
    assert redis_db.client.hlen(keys.buyers) == 0
    assert redis_db.client.hlen(keys.pending) == 0


@pytest.mark.parametrize("stock", [1, 1_000])
def test_prewarm_is_idempotent(redis_db: RedisDatabase, stock: int) -> None:
    keys = open_sale(redis_db, stock)
    script = redis_db.client.register_script(RESERVE_LUA)
    script(keys=keys.reserve_keys(), args=[buyer_arg("alice", 1, "r-1")])
    before = {key: redis_db.client.dump(key) for key in keys.all_keys()}
    assert not gate.prewarm(redis_db.client, keys, stock + 50)
    assert {key: redis_db.client.dump(key) for key in keys.all_keys()} == before
    assert gate.remaining(redis_db.client, keys) == stock - 1
