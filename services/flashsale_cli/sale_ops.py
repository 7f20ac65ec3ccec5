"""The operator's commands of `flashsale`: prewarm, reconcile, retire (the logic lives in `flashsale_sale`).

Connections come from the environment the sale's processes use: FLASHSALE_REDIS_URL,
FLASHSALE_DATABASE_URL (or DATABASE_URL) and, for the prewarm, FLASHSALE_KAFKA_BOOTSTRAP_SERVERS.
Exit codes: 0 done / all holds; 1 refused or a mismatch; 2 a usage problem or the stores could not
answer.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from flashsale_sale.contract import consumer_group, topic_name

if TYPE_CHECKING:  # the stores' clients are imported by the commands that use them: `flashsale gateway`
    import psycopg  # and `--help` load neither
    import redis

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


class _Missing(Exception):
    pass


def prewarm(args: argparse.Namespace) -> int:
    from flashsale_sale.lag import GroupLag, LagUnknown  # noqa: PLC0415 - `--help` needs no Kafka
    from flashsale_sale.prewarm import PrewarmRefused, SaleSpec, prewarm_sale  # noqa: PLC0415

    try:
        client, conn = _redis(), _database()
        servers = _env("FLASHSALE_KAFKA_BOOTSTRAP_SERVERS")
    except _Missing as missing:
        return _fail("prewarm", str(missing), EXIT_UNUSABLE)
    lag = GroupLag(servers, args.topic or topic_name(args.sale), args.group or consumer_group(args.sale))
    spec = SaleSpec(args.sale, args.name, args.stock, args.per_user_limit)
    unanswered: tuple[type[Exception], ...] = (LagUnknown, *_store_errors())
    try:
        with conn:
            built = prewarm_sale(
                client, conn, lag, spec,
                settle_seconds=args.settle_seconds, drain_timeout=args.drain_timeout, open_after=args.open,
            )  # fmt: skip
    except PrewarmRefused as refused:
        return _fail("prewarm", str(refused), EXIT_FAILED)
    except unanswered as error:
        return _fail("prewarm", f"a store did not answer: {error}", EXIT_UNUSABLE)
    finally:
        lag.close()
    print(f"sale {args.sale}: gate {built.value}")
    return EXIT_OK


def reconcile(args: argparse.Namespace) -> int:
    from flashsale_sale.reconcile_read import SaleUnknown  # noqa: PLC0415
    from flashsale_sale.reconcile_read import reconcile as check  # noqa: PLC0415

    try:
        client, conn = _redis(), _database()
        with conn:
            verdict = check(client, conn, args.sale, attempts=args.attempts)
    except _Missing as missing:
        return _fail("reconcile", str(missing), EXIT_UNUSABLE)
    except SaleUnknown as unknown:
        return _fail("reconcile", str(unknown), EXIT_FAILED)
    except _store_errors() as error:
        return _fail("reconcile", f"a store did not answer: {error}", EXIT_UNUSABLE)
    if verdict is None:
        return _fail("reconcile", "the sale never stood still long enough for a consistent reading", 2)
    print(verdict.to_json() if args.json else verdict.report())
    return EXIT_OK if verdict.ok else EXIT_FAILED


def retire(args: argparse.Namespace) -> int:
    from flashsale_sale.prewarm import retire_sale  # noqa: PLC0415

    try:
        client, conn = _redis(), _database()
        with conn:
            known = retire_sale(client, conn, args.sale)
    except _Missing as missing:
        return _fail("retire", str(missing), EXIT_UNUSABLE)
    except _store_errors() as error:
        return _fail("retire", f"a store did not answer: {error}", EXIT_UNUSABLE)
    note = "" if known else " (no such sale in the record)"
    print(f"sale {args.sale}: retired, gate keys dropped{note}")
    return EXIT_OK


def add_parsers(commands: Any) -> None:
    """`prewarm`, `reconcile` and `retire` under the `flashsale` parser."""
    prewarm_cmd = commands.add_parser("prewarm", help="build (or rebuild after a loss) the sale's Redis gate")
    prewarm_cmd.add_argument("--sale", required=True, help="the sale id")
    prewarm_cmd.add_argument("--name", required=True, help="the sale's name")
    prewarm_cmd.add_argument("--stock", type=int, required=True, help="units on sale (the initial stock)")
    prewarm_cmd.add_argument("--per-user-limit", type=int, default=1)
    prewarm_cmd.add_argument("--topic", help="default: the sale's own topic")
    prewarm_cmd.add_argument("--group", help="default: the sale's own consumer group")
    prewarm_cmd.add_argument("--drain-timeout", type=float, default=300.0, help="seconds to wait for lag 0")
    prewarm_cmd.add_argument(
        "--settle-seconds", type=float, default=15.0,
        help="a rebuild first waits this long for publishes in flight (> the gateway's 10 s timeout)",
    )  # fmt: skip
    prewarm_cmd.add_argument("--open", action="store_true", help="set the start flag once the gate is built")
    prewarm_cmd.set_defaults(run=prewarm)

    reconcile_cmd = commands.add_parser("reconcile", help="prove every unit of the sale is counted once")
    reconcile_cmd.add_argument("--sale", required=True, help="the sale id")
    reconcile_cmd.add_argument("--json", action="store_true", help="one JSON object with every number")
    reconcile_cmd.add_argument("--attempts", type=int, default=50, help="readings tried for a stable one")
    reconcile_cmd.set_defaults(run=reconcile)

    retire_cmd = commands.add_parser("retire", help="teardown's last step: never rebuild, drop the keys")
    retire_cmd.add_argument("--sale", required=True, help="the sale id")
    retire_cmd.set_defaults(run=retire)


def _store_errors() -> tuple[type[Exception], ...]:
    """What the stores raise when they do not answer (imported when a command runs, see above)."""
    import psycopg  # noqa: PLC0415
    import redis  # noqa: PLC0415

    return (redis.RedisError, psycopg.Error)


def _redis() -> redis.Redis:
    import redis  # noqa: PLC0415

    return redis.Redis.from_url(_env("FLASHSALE_REDIS_URL"), socket_timeout=10, socket_connect_timeout=10)


def _database() -> psycopg.Connection[Any]:
    url = os.environ.get("FLASHSALE_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        raise _Missing("no database (FLASHSALE_DATABASE_URL)")
    import psycopg  # noqa: PLC0415

    return psycopg.connect(url, connect_timeout=10, autocommit=True)


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise _Missing(f"{name} is not set")
    return value


def _fail(command: str, message: str, code: int) -> int:
    print(f"flashsale {command}: {message}", file=sys.stderr)
    return code
