"""`flashsale token`: a sale's user tokens (one per line, in the order given) or its payment credential.

Nothing but the tokens goes to stdout, so `flashsale token ... > tokens.txt` is the whole file.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from flashsale_sale import tokens

USER_TOKEN_KEY_ENV, PAYMENT_KEY_ENV = tokens.USER_TOKEN_KEY_ENV, tokens.PAYMENT_KEY_ENV


def add_parser(commands: Any) -> None:
    """`token` under the `flashsale` parser."""
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
    token.set_defaults(run=mint)


def mint(args: argparse.Namespace) -> int:
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
