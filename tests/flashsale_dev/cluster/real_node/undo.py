"""Undoing a node's journal: every host side effect it recorded, in the right order.

Used by a node's stop, and by `cleanup_stale()` for nodes whose runner died (at the next start and,
later, by `make down`): `python -m flashsale_dev.cluster.real_node` does that by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from flashsale_dev.cluster.real_node import host, host_ledger
from flashsale_dev.cluster.real_node.addresses import slot_held
from flashsale_dev.cluster.real_node.journal import Effect, Journal, undo_order


def undo_effect(effect: Effect) -> None:
    kind = effect["kind"]
    if kind == "process":
        if host.start_time(effect["pid"]) == effect["start_time"]:
            host.terminate([effect["pid"]])
    elif kind == "host_ledger":
        host_ledger.leave(effect["slot"])
    elif kind == "cgroup":
        host.remove_cgroup(effect["root"])
    elif kind == "route":
        host.delete_route(effect["destination"], effect["device"])
    elif kind == "link":
        host.delete_link(effect["name"])
    elif kind == "netns":
        host.delete_netns(effect["name"])
    elif kind == "directory":
        directory = Path(effect["path"])
        host.unmount_under(directory)
        shutil.rmtree(directory, ignore_errors=True)
    else:
        raise ValueError(f"a journal entry of unknown kind: {effect}")


def undo_journal(journal: Journal) -> None:
    for effect in undo_order(journal.effects()):
        undo_effect(effect)
    journal.discard()


def journal_path(slot: int) -> Path:
    return host_ledger.ledger_dir() / f"node-{slot}.journal"


def cleanup_stale() -> list[int]:
    """Undo the journals of nodes whose runner is gone (their slot lock is free); their slots."""
    directory = host_ledger.ledger_dir()
    cleaned = []
    for path in sorted(directory.glob("node-*.journal")) if directory.exists() else ():
        slot = int(path.stem.split("-")[1])
        if not slot_held(slot):
            undo_journal(Journal(path))
            cleaned.append(slot)
    return cleaned
