"""The gateway's buy path without an HTTP server: what our own code costs per request.

    python -m bench.buy_inprocess [--buys N] [--concurrency C] [--default-gc] [--profile FILE]

Starts its own local platform (Redis, Kafka, ...), opens a sale as bench/sale.py does, builds the
gateway's app in this process exactly as `flashsale gateway`'s worker does (`server.load_app`:
the collector tuned), and calls it as an ASGI server would: C clients, each posting buy requests
with fresh pre-minted tokens one after the other, every request through the front layer, the token
check, the limits, the coalesced Redis gate and the Kafka ack. It prints requests per second and
the process's CPU time per request (all threads: the Kafka poll thread and librdkafka's included).

The HTTP figures (`make bench-dataplane`) put granian in front of this; the difference between the
two is the server's share (docs/benchmarks.md, "Where the buy path's time goes"). `--profile` writes
a cProfile of the event loop's thread (slower, and it inflates small functions; py-spy on this
command is the better picture: `py-spy record -f raw -o FILE -- python -m bench.buy_inprocess`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvloop

from bench.runs import install_signals
from bench.sale import NO_SHEDDING, TOPIC_PARTITIONS, new_sale_id, sale_environment
from flashsale_dev.platform import LocalPlatform
from flashsale_sale import gate, tokens
from flashsale_sale.contract import SaleKeys, topic_name

WARMUP_PER_CLIENT = 20


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    install_signals(args.budget)
    work = Path(tempfile.mkdtemp(prefix="flashsale-bench-inprocess-"))
    work.chmod(0o755)  # the postgres user reaches its data directory through it
    platform = LocalPlatform(work / "platform")
    try:
        platform.start()
        app = _open_sale(platform, tuned=not args.default_gc)
        per_client = args.buys // args.concurrency
        users = [f"buyer-{i}" for i in range((per_client + WARMUP_PER_CLIENT) * args.concurrency)]
        key = os.environ["FLASHSALE_SALE_TOKEN_KEY"].encode()
        headers = [f"Bearer {token}".encode() for token in tokens.mint_many(key, users)]
        print(uvloop.run(_drive(app, headers, args.concurrency, per_client, args.profile)))
    finally:
        signal.alarm(0)
        platform.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    summary = __doc__.split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.buy_inprocess", description=summary)
    parser.add_argument("--buys", type=int, default=200_000, help="timed buy requests (after a warm-up)")
    parser.add_argument("--concurrency", type=int, default=256, help="clients at once (wrk's connections)")
    parser.add_argument("--default-gc", action="store_true", help="the app without the GC tuning")
    parser.add_argument("--profile", help="write a cProfile of the timed requests to this file")
    parser.add_argument("--budget", type=float, default=600.0, help="stop everything after this many seconds")
    return parser


def _open_sale(platform: LocalPlatform, *, tuned: bool) -> Any:
    """A live sale of 10,000,000 units, as bench/sale.py opens it; its app built in this process."""
    sale_id = new_sale_id("inprocess")
    os.environ.update(sale_environment(platform, sale_id, 10_000_000))
    os.environ.update({
        "FLASHSALE_PRODUCT_SKU": "BENCH-1", "FLASHSALE_PRODUCT_NAME": "Benchmark unit",
        "FLASHSALE_PRODUCT_PRICE": "9.99", "FLASHSALE_PRODUCT_CURRENCY": "EUR",
        # The sale's keys as the operator derives them from the platform's (tokens.sale_token_key).
        "FLASHSALE_SALE_TOKEN_KEY": tokens.sale_token_key(secrets.token_bytes(32), f"bench/{sale_id}"),
        "FLASHSALE_SALE_PAYMENT_KEY": tokens.sale_payment_key(secrets.token_bytes(32), f"bench/{sale_id}"),
        "FLASHSALE_ORDER_PATH_KEY": secrets.token_urlsafe(32),
        "FLASHSALE_ADMISSION_RATE": str(NO_SHEDDING), "FLASHSALE_ADMISSION_BURST": str(NO_SHEDDING),
        "FLASHSALE_ADMIN_PORT": str(platform.reserve_port()),  # the lifespan binds it
    })  # fmt: skip
    platform.kafka.create_topic(topic_name(sale_id), partitions=TOPIC_PARTITIONS)
    with platform.redis.client() as client:
        gate.prewarm(client, SaleKeys(sale_id), 10_000_000)
        gate.set_open(client, SaleKeys(sale_id), True)
    from flashsale_gateway.app import build_app  # noqa: PLC0415 - after the environment is set
    from flashsale_gateway.server import load_app  # noqa: PLC0415
    from flashsale_sale.settings import GatewaySettings, load  # noqa: PLC0415

    settings = load(GatewaySettings)
    return load_app(settings) if tuned else build_app(settings)


async def _drive(
    app: Any, headers: list[bytes], concurrency: int, per_client: int, profile: str | None
) -> str:
    lifespan: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    started = asyncio.Event()

    async def lifespan_send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    life = asyncio.create_task(app({"type": "lifespan"}, lifespan.get, lifespan_send))
    await lifespan.put({"type": "lifespan.startup"})
    await asyncio.wait_for(started.wait(), 60)
    runtime = app.runtime
    for _ in range(600):
        if runtime.board.accepting:
            break
        await asyncio.sleep(0.1)
    answers: Counter[int] = Counter()
    body = {"type": "http.request", "body": b"", "more_body": False}
    tokens_left = iter(headers)

    async def receive() -> dict[str, Any]:
        return body

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answers[message["status"]] += 1

    async def client(count: int) -> None:
        for _ in range(count):
            scope = {"type": "http", "method": "POST", "path": runtime.order_path,
                     "headers": [(b"host", b"bench"), (b"authorization", next(tokens_left))]}  # fmt: skip
            await app(scope, receive, send)

    await asyncio.gather(*(client(WARMUP_PER_CLIENT) for _ in range(concurrency)))
    answers.clear()
    profiler = cProfile.Profile() if profile else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    await asyncio.gather(*(client(per_client) for _ in range(concurrency)))
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await lifespan.put({"type": "lifespan.shutdown"})
    await life
    buys = per_client * concurrency
    return (
        f"{buys:,} buys, {concurrency} at once: {buys / wall:,.0f}/s; "
        f"{cpu / buys * 1e6:.1f} us of CPU per request (all threads); answers {dict(answers)}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
