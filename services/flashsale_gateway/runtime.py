"""Everything the gateway holds for its life, built once from the settings: clients, state, limits.

Built inside the server's worker (librdkafka's threads do not survive a fork); `start()` and
`stop()` run in the server's lifespan. Nothing here connects before `start()`, and a missing Redis
or Kafka at start is not fatal: the gateway stays unready (and refuses orders) until they answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import redis.asyncio as aioredis

from flashsale_gateway import page
from flashsale_gateway.batcher import ReserveBatcher
from flashsale_gateway.buy import BuyPath, BuyRules
from flashsale_gateway.limits import TokenBucket, UserRateLimit
from flashsale_gateway.metrics import GatewayMetrics
from flashsale_gateway.orders import OrderView, SmallPool, find_order
from flashsale_gateway.payment import Paid, pay
from flashsale_gateway.publisher import Publisher
from flashsale_gateway.state import StatusBoard
from flashsale_gateway.watch import SaleWatcher
from flashsale_sale.contract import SaleKeys, order_path
from flashsale_sale.settings import GatewaySettings

log = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 2.0


class Runtime:
    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.keys = SaleKeys(settings.sale_id)
        self.user_token_key = settings.sale_token_key.get_secret_value().encode()
        self.payment_key = settings.sale_payment_key.get_secret_value().encode()
        self.order_path = order_path(settings.order_path_key.get_secret_value().encode(), settings.sale_id)
        self.redis = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                settings.redis_url,
                max_connections=64,
                timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
        )
        self.board = StatusBoard(
            sale=settings.sale_name,
            starts_at=settings.starts_at,
            ends_at=settings.ends_at,
            order_path=self.order_path,
            render_js=page.render_status_js,
            on_change=self._on_board_change,
        )
        self.publisher = Publisher(
            settings.kafka_bootstrap_servers, settings.topic, settings.publish_timeout_seconds
        )
        self.batcher = ReserveBatcher(self.redis, self.keys, self.board.note_remaining, metrics.gate_called)
        self.user_rate = UserRateLimit(settings.user_rate_requests, settings.user_rate_seconds)
        self.pool = SmallPool(settings.database_url.get_secret_value())
        rules = BuyRules(
            sale_id=settings.sale_id,
            user_token_key=self.user_token_key,
            per_user_limit=settings.per_user_limit,
            payment_timeout_seconds=settings.payment_timeout_seconds,
        )
        self.buy = BuyPath(
            rules=rules,
            board=self.board,
            batcher=self.batcher,
            publisher=self.publisher,
            admission=TokenBucket(settings.admission_rate, settings.admission_burst, time.time()),
            user_rate=self.user_rate,
            metrics=metrics,
            lookup=self.find_order,
        )
        self.watcher = SaleWatcher(
            self.redis,
            self.keys,
            self.board,
            settings.flag_poll_seconds,
            forget=self.buy.forget,
        )

    async def start(self) -> None:
        self.publisher.start()
        self.watcher.start()
        log.info(
            "gateway for sale %s (%s) on topic %s",
            self.settings.sale_name,
            self.keys.tag,
            self.publisher.topic,
        )

    async def stop(self) -> None:
        """Graceful: stop watching, let the gate calls in flight finish, flush every queued publish."""
        log.info("stopping: sale watcher")
        await self.watcher.stop()
        log.info("stopping: gate calls in flight")
        await self.batcher.drain()
        log.info("stopping: flushing the Kafka producer")
        left = await asyncio.get_running_loop().run_in_executor(None, self.publisher.stop)
        if left:
            log.error("%d reservation messages were not delivered before the stop", left)
        log.info("stopping: closing connections")
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        with contextlib.suppress(Exception):
            await self.pool.close()

    async def find_order(self, reservation_id: str, user: str) -> OrderView | None:
        return await find_order(
            self.pool,
            client=self.redis,
            keys=self.keys,
            reservation_id=reservation_id,
            user=user,
            payment_timeout_seconds=self.settings.payment_timeout_seconds,
        )

    async def pay(self, reservation_id: str) -> Paid:
        """Pays one of this sale's orders (the caller checked the payment credential)."""
        return await pay(self.pool, client=self.redis, keys=self.keys, reservation_id=reservation_id)

    async def readiness(self) -> dict[str, bool]:
        """Redis and Kafka answer, and the sale's flag has been read (the config is live)."""
        try:
            redis_ok = bool(await asyncio.wait_for(self.redis.ping(), REDIS_TIMEOUT_SECONDS))
        except Exception:
            redis_ok = False
        kafka_ok = await asyncio.get_running_loop().run_in_executor(None, self.publisher.reachable, 2.0)
        return {"redis": redis_ok, "kafka": kafka_ok, "config": self.board.loaded}

    def _on_board_change(self, board: StatusBoard) -> None:
        if board.remaining is not None:
            self.metrics.stock_remaining.set(board.remaining)
