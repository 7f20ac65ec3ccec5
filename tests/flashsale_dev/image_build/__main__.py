"""`python -m flashsale_dev.image_build [--list] [--update-locks] [--strict-locks]`: build or list."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from flashsale_dev.image_build.build import Context, build_all, log, repo_root
from flashsale_dev.image_build.locks import LockError
from flashsale_sale import __version__  # the project's one version


def human(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def table(images: Sequence[dict[str, Any]]) -> str:
    rows = [("image", "archive", "compressed", "digest")]
    rows += [(i["ref"], i["archive"], human(i["compressed_bytes"]), i["digest"]) for i in images]
    widths = [max(len(row[c]) for row in rows) for c in range(3)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[3]]) for row in rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flashsale_dev.image_build", description=__doc__)
    parser.add_argument("--list", action="store_true", help="print each built image, its size and digest")
    parser.add_argument(
        "--update-locks",
        action="store_true",
        help="re-resolve requirements.lock and accept new Debian versions",
    )
    parser.add_argument(
        "--strict-locks",
        action="store_true",
        help="stop on Debian versions other than debian.lock's (a release build) instead of warning",
    )
    args = parser.parse_args(argv)
    ctx = Context(repo_root(), __version__, update_locks=args.update_locks, strict_locks=args.strict_locks)
    if args.list:
        listing = ctx.cache / "images.json"
        if not listing.is_file():
            print("no images built yet: run `make images`", file=sys.stderr)
            return 1
        print(table(json.loads(listing.read_text())))
        return 0
    started = time.monotonic()
    try:
        images, built = build_all(ctx)
    except LockError as error:
        print(f"[images] {error}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    if built:
        log(f"{built} archive(s) built in {seconds:.0f}s; {len(images)} images in {ctx.cache}")
    else:
        log(f"{len(images)} images up to date in {ctx.cache} (nothing to build, {seconds:.1f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
