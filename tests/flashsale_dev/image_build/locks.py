"""The recorded versions the images are built from, and the check that what a build got matches them.

`manifests/images/debian.lock`: the SOURCE_DATE_EPOCH of every image (a fixed date, not a commit's:
a new commit must not rebuild the Debian bases), then one section per base rootfs listing every
`package=version` mmdebstrap installed. A build that gets other versions (a point release, a security
update) stops and names them; `--update-locks` accepts them. Pure: parse, render, compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

HEADER: Final = (
    "# Debian packages of each image's base rootfs (bookworm), as the last accepted build got them.\n"
    "# Written by `python -m flashsale_dev.image_build --update-locks`; docs/images.md says when.\n"
)
EPOCH_KEY: Final = "SOURCE_DATE_EPOCH"


class LockError(Exception):
    """A lock that cannot be read, or a build that does not match it (the message says how)."""


@dataclass(frozen=True)
class DebianLock:
    epoch: int
    bases: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def parse_debian_lock(text: str) -> DebianLock:
    epoch: int | None = None
    bases: dict[str, dict[str, str]] = {}
    section: dict[str, str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = bases.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise LockError(f"debian.lock line {number}: expected NAME=VALUE, got {raw!r}")
        if section is None:
            if key != EPOCH_KEY:
                raise LockError(f"debian.lock line {number}: {key} before any [base] section")
            epoch = int(value)
        else:
            section[key] = value
    if epoch is None:
        raise LockError(f"debian.lock: no {EPOCH_KEY}= line")
    return DebianLock(epoch, bases)


def render_debian_lock(lock: DebianLock) -> str:
    parts = [HEADER, f"{EPOCH_KEY}={lock.epoch}\n"]
    for base in sorted(lock.bases):
        packages = lock.bases[base]
        parts.append(f"\n[{base}]\n" + "".join(f"{name}={packages[name]}\n" for name in sorted(packages)))
    return "".join(parts)


def parse_dpkg_list(text: str) -> dict[str, str]:
    """`dpkg-query -W -f '${Package}=${Version}\\n'` output -> {package: version}."""
    return dict(line.split("=", 1) for line in text.splitlines() if line.strip())


def drift(locked: Mapping[str, str], got: Mapping[str, str]) -> list[str]:
    """Human-readable differences, empty when the build matches the lock."""
    changes = []
    for name in sorted(set(locked) | set(got)):
        before, after = locked.get(name), got.get(name)
        if before == after:
            continue
        if before is None:
            changes.append(f"+ {name}={after} (new)")
        elif after is None:
            changes.append(f"- {name}={before} (gone)")
        else:
            changes.append(f"~ {name}: {before} -> {after}")
    return changes


def check_base(
    base: str, locked: Mapping[str, str] | None, got: Mapping[str, str], *, strict: bool = True
) -> str | None:
    """None when the build matches the lock. On drift: raises when `strict`, else returns the message
    to warn with - Debian's mirror serves only the newest version of a package, so a security update
    after the lock was written must not stop `make setup` on a new machine; a release build (`--strict-
    locks`) refuses it, and its digests are the recorded ones only when nothing drifted."""
    if locked is None:
        raise LockError(f"debian.lock has no [{base}] section: run with --update-locks to record it")
    changes = drift(locked, got)
    if not changes:
        return None
    listing = "\n  ".join(changes)
    message = (
        f"the Debian packages of base {base!r} differ from manifests/images/debian.lock:\n  {listing}\n"
        "review them, then run `python -m flashsale_dev.image_build --update-locks` to accept"
    )
    if strict:
        raise LockError(message)
    return message
