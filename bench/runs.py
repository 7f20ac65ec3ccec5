"""What every bench part's runner shares: a bounded run that stops cleanly, and its table on stdout."""

from __future__ import annotations

import signal
from types import FrameType

from bench.figures import Figure


class BudgetExceeded(Exception):
    """The whole run took longer than --budget seconds."""


def install_signals(budget: float) -> None:
    """SIGINT/SIGTERM become KeyboardInterrupt and the budget an alarm, so `finally` cleans up."""

    def interrupt(signum: int, _: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    def out_of_time(_signum: int, _frame: FrameType | None) -> None:
        raise BudgetExceeded(f"over the budget of {budget:.0f} s")

    # SIGINT too: a shell that starts us in the background hands us SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)
    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(max(1, int(budget)))


def print_table(figures: dict[str, Figure]) -> None:
    for figure in figures.values():
        ratio = f"  {figure.ratio_of} = {figure.ratio:.2f}" if figure.ratio is not None else ""
        goal = "" if figure.goal is None else f"  goal {figure.goal}: {'met' if figure.met else 'MISSED'}"
        print(f"{figure.name:36} {figure.value:>12,.1f} {figure.unit}{ratio}{goal}")
