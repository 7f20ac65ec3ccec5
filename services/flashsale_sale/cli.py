"""`flashsale`: the console script of the sale's processes and tools.

    flashsale gateway            serve one sale's gateway (settings: FLASHSALE_* environment)
    flashsale consumer           turn one sale's reservations into orders
    flashsale token --user U     mint user tokens, one per line, in the order given
    flashsale migrate            create or upgrade the database schema (idempotent)
    flashsale prewarm --sale S   build the sale's gate, or rebuild it from the record after a loss
    flashsale reconcile --sale S prove every unit is counted once (exit 1 and a diff if not)
    flashsale retire --sale S    teardown's last step: the gate is dropped and never rebuilt

`--help` works anywhere without settings; the settings are read only when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from flashsale_sale import cli_ops, tokens


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

    token = commands.add_parser("token", help="mint user tokens, one per line, in the order given")
    token.add_argument("--user", action="append", default=[], help="a user id (repeatable)")
    token.add_argument("--users-file", help="more user ids, one per line ('-' for stdin)")
    token.add_argument("--ttl", type=int, default=tokens.DEFAULT_TTL_SECONDS, help="lifetime in seconds")
    token.add_argument("--key", help="the signing key (default: FLASHSALE_USER_TOKEN_KEY)")
    token.set_defaults(run=_token)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema (idempotent)")
    migrate.add_argument("--database-url", help="default: FLASHSALE_DATABASE_URL, then DATABASE_URL")
    migrate.set_defaults(run=_migrate)
    cli_ops.add_parsers(commands)
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


def _token(args: argparse.Namespace) -> int:
    key = args.key or os.environ.get("FLASHSALE_USER_TOKEN_KEY", "")
    if not key:
        print("flashsale token: no key (--key or FLASHSALE_USER_TOKEN_KEY)", file=sys.stderr)
        return 2
    users = list(args.user)
    if args.users_file:
        with open(args.users_file if args.users_file != "-" else 0, encoding="utf-8") as lines:
            users.extend(line.strip() for line in lines if line.strip())
    if not users:
        print("flashsale token: no user (--user U or --users-file F)", file=sys.stderr)
        return 2
    try:
        minted = tokens.mint_many(key.encode(), users, args.ttl)
    except ValueError as error:
        print(f"flashsale token: {error}", file=sys.stderr)
        return 2
    sys.stdout.write("\n".join(minted) + "\n")
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
