"""A node's journal of host side effects: each one appended (and fsynced) BEFORE it is made.

Entries are small JSON objects, one per line, with a `kind` that host_undo.py knows how to reverse.
The journal lives outside the node's data directory (under the lock dir), so it survives a SIGKILL
of the runner and the next start - or `make down` - can read it and put the host back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

Effect = dict[str, Any]


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, kind: str, **fields: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"kind": kind, **fields}, sort_keys=True) + "\n"
        with self.path.open("a") as journal:
            journal.write(line)
            journal.flush()
            os.fsync(journal.fileno())

    def effects(self) -> list[Effect]:
        if not self.path.exists():
            return []
        entries = []
        for line in self.path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:  # a line torn by a kill mid-write: nothing after it was done
                break
        return entries

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def undo_order(effects: list[Effect]) -> list[Effect]:
    """Processes first (everything they hold must be free), then the rest in reverse of creation."""
    processes = [e for e in effects if e["kind"] == "process"]
    others = [e for e in effects if e["kind"] != "process"]
    return list(reversed(processes)) + list(reversed(others))
