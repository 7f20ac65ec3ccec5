"""Shoppers for the e2e tests and the demo: each posts once to the order path, retrying 429/503 as
the sale page does, and reports the final status code."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx

from flashsale_sale import tokens

ATTEMPTS = 100
RETRY_SECONDS = 0.2


async def buy_with_tokens(url: str, minted: Sequence[str], order_path: str | None = None) -> list[int]:
    """Every token buys once, all at the same time; the order path is read from /api/status if not given."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        path = order_path or (await client.get("/api/status")).json()["orderPath"]

        async def shopper(token: str) -> int:
            for _ in range(ATTEMPTS):
                answer = await client.post(path, headers={"Authorization": f"Bearer {token}"})
                if answer.status_code not in (429, 503):
                    break
                await asyncio.sleep(RETRY_SECONDS)
            return answer.status_code

        return list(await asyncio.gather(*(shopper(token) for token in minted)))


def buy(url: str, user_key: str, users: Sequence[str]) -> list[int]:
    """Tokens signed with the platform's user-token key, then `buy_with_tokens`."""
    return asyncio.run(buy_with_tokens(url, tokens.mint_many(user_key.encode(), list(users))))
