"""The naive synchronous design: every click is one PostgreSQL transaction, the database is the gate.

Per request: verify the user's token (the same HMAC the gateway checks), then in one transaction
INSERT the buyer's row and `UPDATE ... SET n = n - 1 WHERE n > 0`; nothing updated means sold out
and the transaction rolls back. The tables are leaner than the project's `orders` (one index), which
favours the naive design. Configured by environment (BENCH_NAIVE_*), served like the other apps.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Final

import psycopg
from psycopg import errors

from bench.apps import Receive, Scope, Send, lifespan
from flashsale_sale import tokens

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS bench_naive_stock (sale text PRIMARY KEY, n integer NOT NULL CHECK (n >= 0));
CREATE TABLE IF NOT EXISTS bench_naive_buyers (
    sale    text NOT NULL,
    user_id text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sale, user_id)
);
"""
INSERT_BUYER: Final = "INSERT INTO bench_naive_buyers (sale, user_id) VALUES (%s, %s)"
TAKE_ONE: Final = "UPDATE bench_naive_stock SET n = n - 1 WHERE sale = %s AND n > 0"


class _Rollback(Exception):
    pass


def prepare(conn: psycopg.Connection[tuple[object, ...]], sale: str, stock: int) -> None:
    """Creates the tables and loads the stock of `sale` (a fresh sale id per benchmark run)."""
    conn.execute(SCHEMA)
    conn.execute("INSERT INTO bench_naive_stock (sale, n) VALUES (%s, %s)", (sale, stock))
    conn.commit()


def check(conn: psycopg.Connection[tuple[object, ...]], sale: str, initial: int) -> dict[str, int]:
    """Rows sold and stock left: oversold (rows beyond the stock) and lost units must both be 0."""
    left_row = conn.execute("SELECT n FROM bench_naive_stock WHERE sale = %s", (sale,)).fetchone()
    rows_row = conn.execute("SELECT count(*) FROM bench_naive_buyers WHERE sale = %s", (sale,)).fetchone()
    left = int(str(left_row[0])) if left_row else -1
    rows = int(str(rows_row[0])) if rows_row else 0
    return {
        "initial": initial,
        "stock_left": left,
        "rows": rows,
        "oversold_units": max(0, rows - initial),
        "lost_units": initial - rows - left,
    }


def _json(status: int, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    raw = json.dumps(body, separators=(",", ":")).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
    }
    return start, {"type": "http.response.body", "body": raw}


class NaiveApp:
    """The ASGI app; its connection pool opens on the first request (no lifespan needed)."""

    def __init__(self, database_url: str, sale: str, token_key: bytes, pool_size: int) -> None:
        self.database_url = database_url
        self.sale = sale
        self.token_key = token_key
        self.pool_size = pool_size
        self._pool: asyncio.Queue[psycopg.AsyncConnection[tuple[object, ...]]] | None = None
        self._opening = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        start, body = await self._answer(scope)
        await send(start)
        await send(body)

    async def _answer(self, scope: Scope) -> tuple[dict[str, object], dict[str, object]]:
        authorization = dict(scope["headers"]).get(b"authorization", b"").decode()
        try:
            user = tokens.verify(self.token_key, authorization.removeprefix("Bearer "))
        except tokens.InvalidToken:
            return _json(401, {"error": "unauthorized", "message": "invalid token"})
        pool = await self._connections()
        conn = await pool.get()
        try:
            async with conn.transaction():
                await conn.execute(INSERT_BUYER, (self.sale, user))
                taken = await conn.execute(TAKE_ONE, (self.sale,))
                if taken.rowcount == 0:
                    raise _Rollback
        except _Rollback:
            return _json(410, {"error": "sold_out", "message": "sold out"})
        except errors.UniqueViolation:
            return _json(200, {"state": "reserved", "message": "already bought"})
        finally:
            pool.put_nowait(conn)
        return _json(202, {"state": "reserved", "quantity": 1})

    async def _connections(self) -> asyncio.Queue[psycopg.AsyncConnection[tuple[object, ...]]]:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    pool: asyncio.Queue[psycopg.AsyncConnection[tuple[object, ...]]] = asyncio.Queue()
                    for _ in range(self.pool_size):
                        pool.put_nowait(await psycopg.AsyncConnection.connect(self.database_url))
                    self._pool = pool
        return self._pool


def _from_environment() -> NaiveApp:
    return NaiveApp(
        database_url=os.environ.get("BENCH_NAIVE_DATABASE_URL", ""),
        sale=os.environ.get("BENCH_NAIVE_SALE", ""),
        token_key=os.environ.get("BENCH_NAIVE_TOKEN_KEY", "").encode(),
        pool_size=int(os.environ.get("BENCH_NAIVE_POOL", "16")),
    )


app = _from_environment()
