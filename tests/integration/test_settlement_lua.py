"""The settlement's scripts against the real Redis: each unit goes back at most once, and never both
back to the gate and into an order; a lost gate is re-created only by the rebuild."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import redis

from flashsale_dev.pytest_plugin import RedisDatabase
from flashsale_sale import gate
from flashsale_sale.contract import (
    RELEASE_LUA,
    RESERVE_LUA,
    Outcome,
    SaleKeys,
    buyer_arg,
    parse_pending_record,
    parse_reserve_reply,
)
from flashsale_sale.settlement_lua import (
    CLAIM_LUA,
    REBUILD_LUA,
    RETURN_LUA,
    claim_keys,
    rebuild_args,
    rebuild_keys,
    return_args,
    return_keys,
)


def live_sale(client: redis.Redis, stock: int, buyers: int) -> SaleKeys:
    """A sale whose first `buyers` users (user-i, reservation r-i, one unit each) reserved."""
    keys = SaleKeys(f"lua-{uuid.uuid4().hex[:8]}")
    gate.prewarm(client, keys, stock)
    gate.set_open(client, keys, True)
    args = [buyer_arg(f"user-{i}", 1, f"r-{i}") for i in range(buyers)]
    results, _ = parse_reserve_reply(client.eval(RESERVE_LUA, 5, *keys.reserve_keys(), *args))
    assert all(r.outcome is Outcome.RESERVED for r in results)
    return keys


def test_a_claim_and_a_release_of_the_same_reservation_never_both_win(redis_db: RedisDatabase) -> None:
    """The recovery's release (forced, on the record as it read it) against a consumer's claim."""
    client = redis_db.client
    keys = live_sale(client, 300, 300)
    claim = client.register_script(CLAIM_LUA)
    release = client.register_script(RELEASE_LUA)
    barrier = threading.Barrier(2)
    seen = client.hgetall(keys.pending)

    def race(i: int) -> tuple[bool, int]:
        def claimer() -> bool:
            barrier.wait(30)
            return bool(claim(keys=claim_keys(keys), args=[f"r-{i}"])[0])

        def releaser() -> int:
            barrier.wait(30)
            return int(release(keys=keys.release_keys(), args=[f"r-{i}", "1", seen[f"r-{i}".encode()]]))

        with ThreadPoolExecutor(2) as pool:
            skipped, released = pool.submit(claimer), pool.submit(releaser)
            return skipped.result(), released.result()

    outcomes = [race(i) for i in range(300)]
    # Either the release came first (the claim then says skip) or the claim did (the release gives nothing).
    assert all((skipped, released) in {(True, 1), (False, 0)} for skipped, released in outcomes)
    released_units = sum(released for _, released in outcomes)
    assert gate.remaining(client, keys) == released_units
    assert client.scard(keys.settled) == released_units
    assert client.hlen(keys.pending) == 300 - released_units


def test_the_recovery_releases_a_claimed_reservation_the_record_refused(redis_db: RedisDatabase) -> None:
    client = redis_db.client
    keys = live_sale(client, 2, 1)
    assert client.eval(CLAIM_LUA, 2, *claim_keys(keys), "r-0") == [0]
    assert parse_pending_record(client.hget(keys.pending, "r-0") or b"").claimed
    assert client.eval(RELEASE_LUA, 5, *keys.release_keys(), "r-0", "0") == 0  # only when forced
    assert client.eval(RELEASE_LUA, 5, *keys.release_keys(), "r-0", "1") == 1  # the recovery may
    assert client.eval(RELEASE_LUA, 5, *keys.release_keys(), "r-0", "1") == 0  # once
    assert gate.remaining(client, keys) == 2
    assert client.hlen(keys.buyers) == 0
    assert client.eval(CLAIM_LUA, 2, *claim_keys(keys), "r-0") == [1]  # a redelivery is skipped


def test_a_release_names_the_user_on_the_events_channel(redis_db: RedisDatabase) -> None:
    client = redis_db.client
    keys = live_sale(client, 1, 1)  # sold out
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    pubsub.subscribe(keys.events)
    assert pubsub.get_message(timeout=10)["type"] == "subscribe"
    assert client.eval(RELEASE_LUA, 5, *keys.release_keys(), "r-0") == 1
    events = [pubsub.get_message(timeout=10) for _ in range(2)]
    assert sorted(e["data"] for e in events if e) == [b"released user-0", b"restocked"]
    pubsub.close()


def test_returns_apply_exactly_once_even_when_run_at_once(redis_db: RedisDatabase) -> None:
    client = redis_db.client
    keys = live_sale(client, 100, 100)
    client.delete(keys.pending)  # every reservation became an order
    expired = [(f"r-{i}", f"user-{i}", 1) for i in range(60)]
    script = client.register_script(RETURN_LUA)
    with ThreadPoolExecutor(4) as pool:
        added = list(
            pool.map(lambda _: int(script(keys=return_keys(keys), args=return_args(expired))), range(4))
        )
    assert sorted(added) == [0, 0, 0, 60]
    assert gate.remaining(client, keys) == 60
    assert client.hlen(keys.buyers) == 40  # the expired buyers may buy again
    assert client.scard(keys.settled) == 60


def test_a_return_to_a_lost_gate_does_not_recreate_it(redis_db: RedisDatabase) -> None:
    client = redis_db.client
    keys = live_sale(client, 5, 1)
    client.delete(keys.stock)
    assert client.eval(RETURN_LUA, 5, *return_keys(keys), "r-0", "user-0", 1) == 0
    assert client.exists(keys.stock) == 0
    assert client.sismember(keys.settled, "r-0")  # the rebuild counts the unit; the return is done


def test_a_lost_gate_answers_nogate_not_closed_and_only_the_rebuild_restores_it(
    redis_db: RedisDatabase,
) -> None:
    client = redis_db.client
    keys = live_sale(client, 5, 2)
    client.delete(*keys.all_keys())  # a Redis restart without persistence: the flag is gone too
    reply = client.eval(RESERVE_LUA, 5, *keys.reserve_keys(), buyer_arg("user-9", 1, "r-9"))
    results, remaining = parse_reserve_reply(reply)
    assert (results[0].outcome, remaining) == (Outcome.NO_GATE, -1)
    assert client.eval(RELEASE_LUA, 5, *keys.release_keys(), "r-0", "1") == 0
    assert client.exists(keys.stock) == 0

    args = rebuild_args(3, 5, [("user-0", "r-0"), ("user-1", "r-1")], ["r-7"])
    assert client.eval(REBUILD_LUA, 5, *rebuild_keys(keys), *args) == 1
    assert client.eval(REBUILD_LUA, 5, *rebuild_keys(keys), *rebuild_args(5, 5, [], [])) == 0
    assert gate.remaining(client, keys) == 3
    assert client.get(keys.initial) == b"5"
    assert client.hgetall(keys.buyers) == {b"user-0": b"r-0", b"user-1": b"r-1"}
    assert client.smembers(keys.settled) == {b"r-7"}
    gate.set_open(client, keys, True)
    again, _ = parse_reserve_reply(
        client.eval(RESERVE_LUA, 5, *keys.reserve_keys(), buyer_arg("user-0", 1, "r-x"))
    )
    assert (again[0].outcome, again[0].reservation_id) == (Outcome.EXISTING, "r-0")
