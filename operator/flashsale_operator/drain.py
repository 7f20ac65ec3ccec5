"""The teardown's drain, decided: what one look at the sale's topic means for the FlashSale's deletion.

A 202 is answered only after the broker acknowledged the reservation's message, and teardown looks
only once the gateways are gone (nothing publishes any more). So "every accepted reservation is
written" is exactly "the consumer group has no lag on the sale's topic": committed offsets move only
after the database commit. A reservation the gate holds whose message was never acknowledged got no
202; recovery's rule for it does not change here, and it does not hold the drain.

Until then the finalizer waits, however long, and says so (condition `Draining`, Events, metrics,
a WARNING line per `drain_warning_seconds`). The only way past it is the escape hatch below.
Pure: the teardown (I/O) asks, this module answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from flashsale_operator.conditions import Reason

# The platform team's explicit "drop what is not written": the topic is kept with the messages in
# it, their offsets recorded, and the teardown finishes.
DROP_ANNOTATION: Final = "flashsale.dev/drop-unwritten-reservations"
# A dedicated queue's topic lives on the sale's own broker, whose claim goes with the sale: nothing
# can be kept, so dropping there needs this second, separate acknowledgement that the messages die.
DROP_DEDICATED_ANNOTATION: Final = "flashsale.dev/drop-dedicated-queue"


class Verdict(StrEnum):
    DRAINED = "Drained"  # nothing left: go on with the teardown
    WAIT = "Wait"  # something left (or unknown): the finalizer holds
    DROP = "Drop"  # the escape hatch: record the rest, keep the topic, go on


def _yes(annotations: Mapping[str, str], key: str) -> bool:
    return str(annotations.get(key, "")).strip().lower() == "true"


@dataclass(frozen=True)
class Seen:
    """One look at the sale's topic during the teardown."""

    topic: str
    left: int | None  # messages not written; None when Kafka did not say
    unwritten: Mapping[int, tuple[int, int]]  # partition -> [first, end) offsets not written
    waited: float  # seconds since the teardown began
    why: str | None = None  # what may hold the consumers back (the record unreachable), or Kafka's error
    dedicated: bool = False


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: Reason
    message: str


def decide(seen: Seen, annotations: Mapping[str, str], *, overdue: bool) -> Decision:
    """What the finalizer does after this look, and the `Draining` condition's reason and message.

    The escape hatch takes effect only once the drain is `overdue` (past its warning threshold): an
    annotation left on a sale from the start never drops what the consumers were about to write.
    """
    if seen.left == 0:
        written = f"every accepted reservation is written (topic {seen.topic})"
        return Decision(Verdict.DRAINED, Reason.DRAINED, written)
    if seen.left is None:
        why = f": {seen.why}" if seen.why else ""
        message = f"consumer group lag unknown on topic {seen.topic}{why}; the teardown waits"
        return Decision(Verdict.WAIT, Reason.LAG_UNKNOWN, message)
    left = describe_left(seen)
    if _yes(annotations, DROP_ANNOTATION):
        return _escape(seen, annotations, left, overdue=overdue)
    return Decision(Verdict.WAIT, Reason.ORDERS_UNWRITTEN, left)


def _escape(seen: Seen, annotations: Mapping[str, str], left: str, *, overdue: bool) -> Decision:
    """The escape hatch asked for, with `left` messages not written."""
    if not overdue:
        return Decision(
            Verdict.WAIT, Reason.ORDERS_UNWRITTEN, f"{left}; {DROP_ANNOTATION} applies once overdue"
        )
    if not seen.dedicated:
        kept = f"{left}; dropped by {DROP_ANNOTATION}, kept in topic {seen.topic}: {ranges(seen.unwritten)}"
        return Decision(Verdict.DROP, Reason.UNWRITTEN_KEPT, kept)
    if _yes(annotations, DROP_DEDICATED_ANNOTATION):
        lost = (
            f"{left}; dropped by {DROP_ANNOTATION} and {DROP_DEDICATED_ANNOTATION}: they go with the "
            f"sale's own broker: {ranges(seen.unwritten)}"
        )
        return Decision(Verdict.DROP, Reason.UNWRITTEN_LOST, lost)
    refused = (
        f"{left}; {DROP_ANNOTATION} refused: the topic is on the sale's own broker, deleted with "
        f'the sale; annotate {DROP_DEDICATED_ANNOTATION}="true" as well to lose them'
    )
    return Decision(Verdict.WAIT, Reason.DROP_REFUSED, refused)


def describe_left(seen: Seen) -> str:
    why = f" ({seen.why})" if seen.why else ""
    return (
        f"{seen.left} accepted reservation message(s) not written yet: consumer group lag "
        f"{seen.left} on topic {seen.topic}{why}"
    )


def ranges(unwritten: Mapping[int, tuple[int, int]]) -> str:
    """`partition 0 offsets 3..7` (first inclusive, end exclusive), one per partition."""
    parts = [f"partition {p} offsets {first}..{end}" for p, (first, end) in sorted(unwritten.items())]
    return ", ".join(parts) or "no offsets"


def warnings_due(waited: float, threshold: float) -> int:
    """How many warning periods the drain has lasted: one alert-worthy line for each new one."""
    return int(waited // threshold) if waited >= threshold else 0


def drain_status(seen: Seen, *, since: str | None, dropped: bool) -> dict[str, object]:
    """`status.drain`: what is left and where, as the teardown last saw it."""
    return {
        "topic": seen.topic,
        "since": since,
        "unwritten": seen.left,
        "dropped": dropped,
        "partitions": [
            {"partition": p, "fromOffset": first, "toOffset": end}
            for p, (first, end) in sorted(seen.unwritten.items())
        ],
    }
