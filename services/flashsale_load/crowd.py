"""Who comes to the sale and when: a seeded, reproducible plan of shoppers (pure).

Early clickers arrive in the first seconds after the order path appears (the crowd that waited on
the page), late arrivals over the rest of the run. Some are bots without a valid token, some click
again after their first answer, some pay and some never do (their units come back after the
payment timeout).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class CrowdShape:
    users: int
    duration_s: float
    early_share: float = 0.5  # of the users, arriving within early_window_s
    early_window_s: float = 2.0
    bot_share: float = 0.05
    repeat_share: float = 0.2  # click again after their first answer
    payer_share: float = 0.7  # of the buyers who get a reservation, pay for it
    quantity: int = 1
    seed: int = 1

    def __post_init__(self) -> None:
        if self.users < 1 or self.duration_s <= 0 or self.quantity < 1:
            raise ValueError("a crowd needs at least one user, a positive duration and quantity")
        for name in ("early_share", "bot_share", "repeat_share", "payer_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a share between 0 and 1")


@dataclass(frozen=True)
class Shopper:
    index: int
    user: str
    arrives_at_s: float  # after the sale was seen live
    bot: bool  # sends a forged token
    clicks: int  # 1, or 2 for a repeat clicker
    pays: bool
    quantity: int  # units asked for


def plan_crowd(shape: CrowdShape, run_id: str) -> list[Shopper]:
    """The shoppers in order of arrival; the same shape and run id give the same crowd."""
    draw = random.Random(shape.seed)  # noqa: S311 - a reproducible crowd, not a secret
    early_end = min(shape.early_window_s, shape.duration_s)
    shoppers = []
    for index in range(shape.users):
        early = draw.random() < shape.early_share
        arrives = draw.uniform(0, early_end) if early else draw.uniform(early_end, shape.duration_s)
        shoppers.append(
            Shopper(
                index=index,
                user=f"load-{run_id}-{index}",
                arrives_at_s=arrives,
                bot=draw.random() < shape.bot_share,
                clicks=2 if draw.random() < shape.repeat_share else 1,
                pays=draw.random() < shape.payer_share,
                quantity=shape.quantity,
            )
        )
    return sorted(shoppers, key=lambda s: s.arrives_at_s)
