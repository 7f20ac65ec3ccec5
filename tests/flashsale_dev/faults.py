"""Fault injection for the chaos tests: crash a process, take a component away, freeze it, lose Redis.

Every fault is bounded in time and undone by the same call or context manager that made it, also
when the test fails inside it: a frozen process is thawed by a watchdog even if the test hangs, a
component taken down is started again on the way out, a held lock is rolled back. Only processes
the test started are touched, each by its own process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

import psycopg

from flashsale_dev.components import Component, Redis
from flashsale_dev.process import ManagedProcess

# A freeze longer than this is a test bug: the watchdog thaws the process whatever the test does.
FREEZE_LIMIT_SECONDS = 30.0


def sigkill(process: ManagedProcess) -> float:
    """SIGKILL the process and everything it forked, as a crash would; returns when it was done."""
    process.kill()
    return time.monotonic()


@contextlib.contextmanager
def frozen(process: ManagedProcess, limit: float = FREEZE_LIMIT_SECONDS) -> Iterator[None]:
    """SIGSTOP the process group for the block: it keeps its sockets but answers nothing (a hung
    broker, a stalled disk). SIGCONT on the way out, or after `limit` seconds at the latest."""
    pid = process.pid
    if pid is None or not process.alive:
        raise RuntimeError(f"{process.name} is not running")
    thawed = threading.Event()

    def thaw() -> None:
        if not thawed.is_set():
            thawed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGCONT)

    watchdog = threading.Timer(limit, thaw)
    watchdog.daemon = True
    os.killpg(pid, signal.SIGSTOP)
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()
        thaw()


@contextlib.contextmanager
def down(component: Component, *, crash: bool = True) -> Iterator[None]:
    """The component is away for the block - SIGKILLed (a crash) or stopped (an operator's restart) -
    and started again on the same port and data on the way out (bounded by its readiness timeout)."""
    if crash:
        component.kill()
    else:
        component.stop()
    try:
        yield
    finally:
        component.start()


def restart(component: Component, *, crash: bool = True) -> float:
    """Down and up again at once; returns how long it was away, in seconds."""
    started = time.monotonic()
    with down(component, crash=crash):
        pass
    return time.monotonic() - started


def restart_without_persistence(redis: Redis) -> None:
    """A Redis restart that forgets everything, as one without AOF or snapshots does."""
    if redis.appendonly:
        raise ValueError("this Redis persists its writes: a restart would not lose them")
    restart(redis, crash=True)
    with redis.client() as client:
        assert client.dbsize() == 0, "Redis kept data across a restart without persistence"


def forget_everything(redis: Redis) -> None:
    """What a restart without persistence leaves behind, without the restart: every database empty
    (clients keep their connections; use `restart_without_persistence` for the outage too)."""
    with redis.client() as client:
        client.flushall()


@contextlib.contextmanager
def ledger_locked(database_url: str, sale_id: str) -> Iterator[None]:
    """Holds the sale's stock-ledger row (SELECT ... FOR UPDATE) for the block: a consumer's batch
    inserts its orders, then waits on the ledger mid-transaction until the block ends (rolled back)."""
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        query = "SELECT 1 FROM stock_ledger WHERE sale_id = %s FOR UPDATE"
        if conn.execute(query, (sale_id,)).fetchone() is None:
            conn.rollback()
            raise LookupError(f"sale {sale_id} has no ledger row yet")
        try:
            yield
        finally:
            conn.rollback()


def waiting_on_locks(database_url: str, statement: str) -> int:
    """Sessions of this database waiting on a lock while running a statement that contains `statement`."""
    with psycopg.connect(database_url, connect_timeout=10, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND state = 'active' AND query LIKE %s",
            (f"%{statement}%",),
        ).fetchone()
    return 0 if row is None else int(row[0])
