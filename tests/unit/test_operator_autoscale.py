"""Consumers follow the backlog: up at once, down only after a calm window, never past the partitions."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from flashsale_operator.autoscale import ScalePolicy, ScaleReason, Seen, decide, remember, wanted_replicas

pytestmark = pytest.mark.unit

POLICY = ScalePolicy(min_replicas=1, max_replicas=None, lag_threshold=1000, window_seconds=60, partitions=12)


@pytest.mark.parametrize(
    ("lag", "wanted"),
    [(0, 1), (1, 1), (1000, 1), (1001, 2), (5500, 6), (12_000, 12), (12_001, 12), (10**9, 12)],
)
def test_wanted_replicas_is_the_backlog_over_the_threshold_capped_at_the_partitions(
    lag: int, wanted: int
) -> None:
    assert wanted_replicas(lag, POLICY) == wanted


def test_max_replicas_caps_below_the_partitions_and_min_replicas_holds_a_floor() -> None:
    capped = ScalePolicy(min_replicas=2, max_replicas=4, lag_threshold=100, window_seconds=0, partitions=12)
    assert wanted_replicas(10_000, capped) == 4
    assert wanted_replicas(0, capped) == 2
    # More than the partitions is never asked, whatever maxReplicas says.
    wide = ScalePolicy(min_replicas=1, max_replicas=50, lag_threshold=1, window_seconds=0, partitions=3)
    assert wanted_replicas(10_000, wide) == 3


def run(
    lags: Sequence[tuple[float, int]], policy: ScalePolicy = POLICY, current: int = 1
) -> list[tuple[int, str]]:
    """Feeds (time, lag) ticks to the decision as the loop does; (replicas, reason) after each."""
    history: tuple[Seen, ...] = ()
    seen = []
    for at, lag in lags:
        history = remember(history, Seen(at, wanted_replicas(lag, policy)), policy.window_seconds)
        decision = decide(current, lag, history, policy, watched_seconds=at)
        current = decision.replicas
        seen.append((current, decision.reason.value))
    return seen


def test_a_backlog_scales_up_at_once() -> None:
    assert run([(0, 0), (1, 8_500)]) == [(1, "Steady"), (9, "ScaledUp")]


def test_draining_scales_down_only_after_the_window_has_seen_nothing_higher() -> None:
    ticks = [(0, 8_500), (1, 0), (30, 0), (60, 0), (61, 0), (62, 0)]
    assert run(ticks) == [
        (9, "ScaledUp"),
        (9, "Stabilizing"),
        (9, "Stabilizing"),
        (9, "Stabilizing"),  # the 9 seen at t=0 is still inside the window at t=60
        (1, "ScaledDown"),
        (1, "Steady"),
    ]


def test_scaling_down_goes_to_the_highest_need_still_inside_the_window() -> None:
    # The 9 leaves the window at t=60; the burst needing 5 at t=55 holds 5 until t=115.
    ticks = [(0, 8_500), (50, 0), (55, 4_500), (100, 0), (116, 0)]
    assert [r for r, _ in run(ticks)] == [9, 9, 9, 5, 1]


def test_a_restarted_loop_waits_a_whole_window_before_scaling_down() -> None:
    history = remember((), Seen(5, 1), 60)
    decision = decide(6, 0, history, POLICY, watched_seconds=5)
    assert (decision.replicas, decision.reason) == (6, ScaleReason.STABILIZING)


def test_replicas_changed_by_hand_outside_the_bounds_are_put_back() -> None:
    history = remember((), Seen(0, 1), 60)
    decision = decide(40, 0, history, POLICY, watched_seconds=0)
    assert (decision.replicas, decision.reason) == (12, ScaleReason.OUT_OF_BOUNDS)
