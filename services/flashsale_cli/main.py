"""`flashsale`: the console script of the sale's processes and tools.

    flashsale gateway            serve one sale's gateway (settings: FLASHSALE_* environment)
    flashsale consumer           turn one sale's reservations into orders
    flashsale token --sale NS/N --user U     mint the sale's user tokens, one per line, in order
    flashsale token --payment --sale NS/N    mint the sale's payment-service credential
    flashsale migrate            create or upgrade the database schema (idempotent)
    flashsale prewarm --sale S   build the sale's gate, or rebuild it from the record after a loss
    flashsale reconcile --sale S prove every unit is counted once (exit 1 and a diff if not)
    flashsale retire --sale S    teardown's last step: the gate is dropped and never rebuilt
    flashsale load --url U --sale NS/N --users N --rate R --duration S   rehearse a sale with a crowd

`--help` works anywhere without settings; the settings are read only when a command runs, and a
service is imported only by its own command.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from flashsale_cli import minting, sale_ops
from flashsale_load import cli as load


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.run(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flashsale", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    gateway = commands.add_parser("gateway", help="serve one sale's gateway (FLASHSALE_* settings)")
    gateway.set_defaults(run=_gateway)

    consumer = commands.add_parser("consumer", help="turn one sale's reservations into orders")
    consumer.set_defaults(run=_consumer)

    minting.add_parser(commands)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema (idempotent)")
    migrate.add_argument("--database-url", help="default: FLASHSALE_DATABASE_URL, then DATABASE_URL")
    migrate.set_defaults(run=_migrate)
    sale_ops.add_parsers(commands)
    load.add_parser(commands)
    return parser


def _gateway(_: argparse.Namespace) -> int:
    from flashsale_gateway.server import serve  # noqa: PLC0415 - `--help` must not need the server
    from flashsale_sale.settings import GatewaySettings, load  # noqa: PLC0415

    serve(load(GatewaySettings))
    return 0


def _consumer(_: argparse.Namespace) -> int:
    from flashsale_consumer.runner import run  # noqa: PLC0415
    from flashsale_sale.settings import ConsumerSettings, load  # noqa: PLC0415

    return run(load(ConsumerSettings))


def _migrate(args: argparse.Namespace) -> int:
    import psycopg  # noqa: PLC0415

    from flashsale_sale.db import migrate, schema_version  # noqa: PLC0415

    url = args.database_url or os.environ.get("FLASHSALE_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        print("flashsale migrate: no database (--database-url or FLASHSALE_DATABASE_URL)", file=sys.stderr)
        return 2
    with psycopg.connect(url, connect_timeout=10) as conn:
        applied = migrate(conn)
        version = schema_version(conn)
    print(f"schema at version {version}" + (f" (applied {applied})" if applied else " (already current)"))
    return 0
