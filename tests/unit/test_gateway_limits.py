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


def test_each_user_gets_their_own_window() -> None:
    limit = UserRateLimit(requests=2, seconds=1.0)
    assert limit.allow("a", 0.0)
    assert limit.allow("a", 0.1)
    assert not limit.allow("a", 0.2)
    assert limit.retry_after("a", 0.2) == 1
    assert limit.allow("b", 0.2)
    assert limit.allow("a", 1.0)  # a new window


def test_prune_forgets_only_finished_windows() -> None:
    limit = UserRateLimit(requests=1, seconds=1.0)
    limit.allow("old", 0.0)
    limit.allow("new", 5.5)
    assert limit.prune(6.0) == 1
    assert len(limit) == 1
    assert not limit.allow("new", 6.0)
