"""`flashsale load`: its options, the tokens and credential it needs, and the run (the dispatcher's
subcommand; everything here is imported only when `load` runs)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from flashsale_sale import tokens

if TYPE_CHECKING:
    from flashsale_load.crowd import Shopper

USER_TOKEN_KEY_ENV, PAYMENT_KEY_ENV = tokens.USER_TOKEN_KEY_ENV, tokens.PAYMENT_KEY_ENV

DESCRIPTION = """Play a bounded, realistic crowd against a sale's public URL and report what happened.

Shoppers do what the sale page does: read /api/status, post {"quantity": n} with their token to the
order path once the sale is live (retrying 429/503 after Retry-After, at most 5 times), some click
twice, some are bots with forged tokens; a share of the buyers is paid for by the payment service.
--users, --rate and --duration are required caps: at most that many shoppers, request starts per
second and seconds of buying from the moment the sale is seen live (then up to --settle seconds of
payments and order lookups). Exit status: 0 when the run completed and every promise held, 1 when a
repeat click got a second reservation or the gateway answered a 5xx other than 503, 2 on bad options,
3 when the sale did not go live in time."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    load = commands.add_parser(
        "load",
        help="rehearse a sale: play a bounded crowd against its public URL and report",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("--url", required=True, help="the sale gateway's public base URL (status.gateway.url)")
    load.add_argument("--sale", required=True, help="NAMESPACE/NAME of the FlashSale (its keys are derived)")
    load.add_argument("--users", type=int, required=True, help="cap: shoppers in the crowd")
    load.add_argument("--rate", type=float, required=True, help="cap: request starts per second, all kinds")
    load.add_argument("--duration", type=float, required=True, help="cap: seconds of buying after going live")
    tokens_from = load.add_mutually_exclusive_group()
    tokens_from.add_argument("--key", help=f"the platform's user-token key (default: {USER_TOKEN_KEY_ENV})")
    tokens_from.add_argument("--tokens-file", help="the shoppers' tokens instead, one per line, in order")
    paying = load.add_mutually_exclusive_group()
    paying.add_argument("--payment-key", help=f"the platform's payment key (default: {PAYMENT_KEY_ENV})")
    paying.add_argument(
        "--payment-credential", help="the sale's payment credential (flashsale token --payment)"
    )
    load.add_argument("--quantity", type=int, default=1, help="units each shopper asks for (default 1)")
    load.add_argument("--early-share", type=float, default=0.5, help="share arriving in the first seconds")
    load.add_argument("--early-window", type=float, default=2.0, help="those first seconds (default 2)")
    load.add_argument("--bot-share", type=float, default=0.05, help="share of bots with forged tokens")
    load.add_argument("--repeat-share", type=float, default=0.2, help="share clicking twice")
    load.add_argument("--payer-share", type=float, default=0.7, help="share of reserved buyers who pay")
    load.add_argument("--connections", type=int, default=64, help="requests in flight at most (default 64)")
    load.add_argument(
        "--wait-live", type=float, default=600.0, help="seconds to wait for the sale to go live"
    )
    load.add_argument(
        "--settle", type=float, default=60.0, help="seconds for payments and order lookups after"
    )
    load.add_argument("--seed", type=int, default=1, help="the crowd's random seed (same seed, same crowd)")
    load.add_argument("--json", dest="json_path", help="also write the report as JSON to this file")
    load.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    load.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Here, not at the top: `flashsale --help` and the other subcommands never load the HTTP client.
    from flashsale_load.client import Limits, LoadRun, NotLive, Target  # noqa: PLC0415
    from flashsale_load.crowd import CrowdShape, plan_crowd  # noqa: PLC0415
    from flashsale_load.report import Outcome, render, report  # noqa: PLC0415

    try:
        shape = CrowdShape(
            users=args.users, duration_s=args.duration, early_share=args.early_share,
            early_window_s=args.early_window, bot_share=args.bot_share, repeat_share=args.repeat_share,
            payer_share=args.payer_share, quantity=args.quantity, seed=args.seed,
        )  # fmt: skip
        if args.rate <= 0 or args.connections < 1:
            raise ValueError("--rate must be positive and --connections at least 1")
        tokens.sale_reference(args.sale)
        shoppers = plan_crowd(shape, uuid.uuid4().hex[:8])
        token_for = _token_source(args, shoppers)
        credential = _payment_credential(args)
    except (ValueError, OSError) as problem:
        print(f"flashsale load: {problem}", file=sys.stderr)
        return 2
    target = Target(url=args.url.rstrip("/"), token_for=token_for, payment_credential=credential)
    limits = Limits(
        rate=args.rate, duration_s=args.duration, connections=args.connections,
        wait_live_s=args.wait_live, settle_s=args.settle,
    )  # fmt: skip
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    started = time.monotonic()
    try:
        tally = asyncio.run(LoadRun(target, limits, progress).run(shoppers))
    except NotLive as problem:
        print(f"flashsale load: {problem}", file=sys.stderr)
        return 3
    summary = report(tally, sale=args.sale, users=len(shoppers), duration_s=time.monotonic() - started)
    print(render(summary))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(summary, indent=2) + "\n")
    broken = tally.repeat_new_reservations > 0 or tally.answers[Outcome.SERVER_ERROR] > 0
    return 1 if broken else 0


def _token_source(args: argparse.Namespace, shoppers: list[Shopper]) -> Callable[[Shopper], str]:
    """Shopper -> bearer token: minted with the sale's key (or read from a file); forged for bots."""
    forger = secrets.token_bytes(32)
    if args.tokens_file:
        lines = [line.strip() for line in Path(args.tokens_file).read_text().splitlines() if line.strip()]
        if len(lines) < len(shoppers):
            raise ValueError(f"--tokens-file has {len(lines)} tokens for {len(shoppers)} users")
        by_index = dict(enumerate(lines))
    else:
        platform_key = (args.key or os.environ.get(USER_TOKEN_KEY_ENV, "")).encode()
        if not platform_key:
            raise ValueError(f"no key (--key, {USER_TOKEN_KEY_ENV} or --tokens-file)")
        key = tokens.sale_token_key(platform_key, args.sale).encode()
        minted = tokens.mint_many(key, [s.user for s in shoppers])
        by_index = {s.index: token for s, token in zip(shoppers, minted, strict=True)}

    def token_for(shopper: Shopper) -> str:
        return tokens.mint(forger, shopper.user) if shopper.bot else by_index[shopper.index]

    return token_for


def _payment_credential(args: argparse.Namespace) -> str | None:
    if args.payment_credential:
        return str(args.payment_credential)
    platform_key = (args.payment_key or os.environ.get(PAYMENT_KEY_ENV, "")).encode()
    if not platform_key:
        return None  # nobody pays: every reservation lapses after the payment timeout
    key = tokens.sale_payment_key(platform_key, args.sale).encode()
    return tokens.mint_payment(key, args.sale)
