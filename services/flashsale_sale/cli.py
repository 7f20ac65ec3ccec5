"""`flashsale`: the console script of the sale's processes and tools.

    flashsale gateway            serve one sale's gateway (settings: FLASHSALE_* environment)
    flashsale consumer           turn one sale's reservations into orders
    flashsale token --sale NS/N --user U     mint the sale's user tokens, one per line, in order
    flashsale token --payment --sale NS/N    mint the sale's payment-service credential
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

USER_TOKEN_KEY_ENV = "FLASHSALE_USER_TOKEN_KEY"  # noqa: S105 - a variable name; `make up` exports it
PAYMENT_KEY_ENV = "FLASHSALE_PAYMENT_KEY"  # the platform's payment key


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

    token = commands.add_parser(
        "token", help="mint a sale's user tokens (one per line, in order) or its payment credential"
    )
    token.add_argument("--sale", help="NAMESPACE/NAME of the FlashSale the tokens are for (required)")
    token.add_argument("--user", action="append", default=[], help="a user id (repeatable)")
    token.add_argument("--users-file", help="more user ids, one per line ('-' for stdin)")
    token.add_argument("--payment", action="store_true", help="the sale's payment-service credential instead")
    token.add_argument("--ttl", type=int, default=tokens.DEFAULT_TTL_SECONDS, help="lifetime in seconds")
    token.add_argument(
        "--key",
        help="the PLATFORM key the sale's key is derived from"
        f" (default: {USER_TOKEN_KEY_ENV}, with --payment {PAYMENT_KEY_ENV})",
    )
    token.set_defaults(run=_token)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema (idempotent)")
    migrate.add_argument("--database-url", help="default: FLASHSALE_DATABASE_URL, then DATABASE_URL")
    migrate.set_defaults(run=_migrate)
    cli_ops.add_parsers(commands)
    from flashsale_load.cli import add_parser as add_load  # noqa: PLC0415 - moves to the dispatcher

    add_load(commands)
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
    if not args.sale:
        return _refuse("no sale (--sale NAMESPACE/NAME: tokens are signed with that sale's own key)")
    variable = PAYMENT_KEY_ENV if args.payment else USER_TOKEN_KEY_ENV
    platform_key = (args.key or os.environ.get(variable, "")).encode()
    if not platform_key:
        return _refuse(f"no key (--key or {variable})")
    try:
        if args.payment:
            if args.user or args.users_file:
                return _refuse("--payment mints the sale's payment credential, for no user")
            key = tokens.sale_payment_key(platform_key, args.sale)
            minted = [tokens.mint_payment(key.encode(), args.sale, args.ttl)]
        else:
            users = _users(args)
            if not users:
                return _refuse("no user (--user U or --users-file F)")
            key = tokens.sale_token_key(platform_key, args.sale)
            minted = tokens.mint_many(key.encode(), users, args.ttl)
    except ValueError as error:
        return _refuse(str(error))
    sys.stdout.write("\n".join(minted) + "\n")
    return 0


def _users(args: argparse.Namespace) -> list[str]:
    users = list(args.user)
    if args.users_file:
        with open(args.users_file if args.users_file != "-" else 0, encoding="utf-8") as lines:
            users.extend(line.strip() for line in lines if line.strip())
    return users


def _refuse(problem: str) -> int:
    print(f"flashsale token: {problem}", file=sys.stderr)
    return 2


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
