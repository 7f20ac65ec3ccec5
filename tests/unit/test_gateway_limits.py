"""Admission bucket and per-user rate: constant-time refusals, exact under a fake clock."""

from __future__ import annotations

from flashsale_gateway.limits import TokenBucket, UserRateLimit


def test_the_bucket_admits_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after() == 1
    assert not bucket.take(0.05)
    assert bucket.take(0.1)  # one token back after 1/rate seconds
    assert not bucket.take(0.1)


def test_the_bucket_never_holds_more_than_its_burst() -> None:
    bucket = TokenBucket(rate=1000.0, burst=2, now=0.0)
    assert [bucket.take(100.0) for _ in range(3)] == [True, True, False]


def test_a_slow_bucket_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=0.25, burst=1, now=0.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.0)
    assert bucket.retry_after() == 4


def test_each_user_gets_their_own_count_in_a_window_shared_by_all() -> None:
    limit = UserRateLimit(requests=2, seconds=1.0)
    assert limit.allow("a", 0.0)
    assert limit.allow("a", 0.1)
    assert not limit.allow("a", 0.2)
    assert limit.retry_after(0.2) == 1
    assert limit.allow("b", 0.2)
    assert limit.allow("b", 0.9)
    assert not limit.allow("b", 0.95)
    assert limit.allow("a", 1.0)  # a new window, for everyone
    assert limit.allow("b", 1.0)


def test_a_window_forgets_every_count_of_the_last_one_at_once() -> None:
    limit = UserRateLimit(requests=1, seconds=2.0)
    for i in range(1000):
        limit.allow(f"user-{i}", 0.5)
    assert len(limit) == 1000
    assert not limit.allow("user-7", 1.9)
    assert limit.retry_after(1.9) == 1  # 0.1 s left, in whole seconds
    assert limit.allow("user-7", 2.0)
    assert len(limit) == 1  # memory is one window's users, nothing to prune
