"""PostgreSQL 15 (Debian): a data directory initialised per platform, owned by the `postgres` user.

initdb and postgres refuse to run as root; as root we run both as the `postgres` user that the
Debian package creates. Tests trade durability for speed unless `durable=True`: fsync off and no
full-page writes survive a killed process (the OS still holds every write) but not a machine crash.
synchronous_commit stays on: with it off, a SIGKILL loses commits that were already acknowledged,
and the chaos tests kill PostgreSQL on purpose. Any figure measured with the fast settings says so.
"""

from __future__ import annotations

import os
import pwd
import signal
import stat
import subprocess
from pathlib import Path

import psycopg

from flashsale_dev.components.base import Component
from flashsale_dev.paths import POSTGRES_BIN, require_binary
from flashsale_dev.ports import PortReservations
from flashsale_dev.process import ComponentError, ManagedProcess

DATABASE = "flashsale"
FAST_SETTINGS = {"fsync": "off", "full_page_writes": "off"}


class Postgres(Component):
    name = "postgres"

    def __init__(self, root: Path, ports: PortReservations, *, durable: bool = False) -> None:
        super().__init__(root, ports)
        self.durable = durable
        self.data_dir = self.dir / "data"
        self.socket_dir = self.dir / "socket"
        self.user = "postgres" if os.geteuid() == 0 else None

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = DATABASE, **kwargs: object) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(database), connect_timeout=5, **kwargs)  # type: ignore[arg-type]

    def exports(self) -> dict[str, str]:
        return {"DATABASE_URL": self.url()}

    def _prepare(self) -> None:
        self.socket_dir.mkdir(exist_ok=True)
        if self.user:
            owner = pwd.getpwnam(self.user)
            closed = _first_closed_ancestor(self.dir, owner.pw_uid)
            if closed:
                raise ComponentError(
                    f"the {self.user} user cannot reach {self.dir}: {closed} is closed to others; "
                    "put the platform's state under /tmp (e.g. FLASHSALE_STATE_DIR=/tmp/...)"
                )
            for path in (self.dir, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        initdb = [
            str(require_binary(POSTGRES_BIN / "initdb")),
            "-D", str(self.data_dir), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync",
        ]  # fmt: skip
        done = subprocess.run(initdb, user=self.user, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ComponentError(f"initdb failed:\n{done.stdout}\n{done.stderr}")

    def _make_process(self) -> ManagedProcess:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": "200",
            **({} if self.durable else FAST_SETTINGS),
        }
        argv = [str(require_binary(POSTGRES_BIN / "postgres")), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for every client to leave.
        return ManagedProcess(self.name, argv, self.log_path, user=self.user, stop_signal=signal.SIGINT)

    def _ready(self) -> bool:
        with self.connect("postgres") as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)

    def _after_first_start(self) -> None:
        with self.connect("postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")


def _first_closed_ancestor(path: Path, uid: int) -> Path | None:
    """The first directory above `path` that user `uid` may not traverse, if any."""
    for ancestor in reversed(path.parents):
        info = ancestor.stat()
        if info.st_uid != uid and not info.st_mode & stat.S_IXOTH:
            return ancestor
    return None
