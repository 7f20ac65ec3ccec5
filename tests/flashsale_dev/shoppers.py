"""Shoppers for the e2e tests and the demo: each posts once to the order path, retrying 429/503 as
the sale page does, and reports the final status code."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx

from flashsale_sale import tokens

ATTEMPTS = 100
RETRY_SECONDS = 0.2


async def buy_with_tokens(
    url: str, minted: Sequence[str], order_path: str | None = None, *, one_at_a_time: bool = False
) -> list[int]:
    """Every token buys once, all at the same time (or each after the one before had its answer);
    the order path is read from /api/status if not given."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        path = order_path or (await client.get("/api/status")).json()["orderPath"]

        async def shopper(token: str) -> int:
            for _ in range(ATTEMPTS):
                answer = await client.post(path, headers={"Authorization": f"Bearer {token}"})
                if answer.status_code not in (429, 503):
                    break
                await asyncio.sleep(RETRY_SECONDS)
            return answer.status_code

        if one_at_a_time:
            return [await shopper(token) for token in minted]
        return list(await asyncio.gather(*(shopper(token) for token in minted)))


def buy(url: str, user_key: str, users: Sequence[str]) -> list[int]:
    """Tokens signed with the sale's user-token key (`user_key`), then `buy_with_tokens`."""
    return asyncio.run(buy_with_tokens(url, tokens.mint_many(user_key.encode(), list(users))))


def buy_one_at_a_time(url: str, user_key: str, users: Sequence[str]) -> list[int]:
    """Like `buy`, but each buyer posts once the one before had its answer. A gateway sends the new
    reservations of one event-loop tick as ONE Kafka message; buyers one at a time are a message
    each, so N of them are exactly N messages of lag (what a lag-scaling test needs to know)."""
    minted = tokens.mint_many(user_key.encode(), list(users))
    return asyncio.run(buy_with_tokens(url, minted, one_at_a_time=True))
