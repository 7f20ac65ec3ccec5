"""Redis (Debian's redis-server): no persistence unless asked, AOF for the durability tests."""

from __future__ import annotations

from pathlib import Path

import redis

from flashsale_dev.components.base import Component
from flashsale_dev.paths import require_binary
from flashsale_dev.ports import PortReservations
from flashsale_dev.process import ManagedProcess

# Enough logical databases to hand every test its own one.
DATABASES = 512


class Redis(Component):
    name = "redis"

    def __init__(self, root: Path, ports: PortReservations, *, appendonly: bool = False) -> None:
        super().__init__(root, ports)
        self.appendonly = appendonly

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis.from_url(self.url(db))

    def exports(self) -> dict[str, str]:
        return {"REDIS_URL": self.url()}

    def _make_process(self) -> ManagedProcess:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        )
        argv = [
            str(require_binary("/usr/bin/redis-server")),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.dir),
            "--save", "",
            "--databases", str(DATABASES),
            "--daemonize", "no",
            *persistence,
        ]  # fmt: skip
        return ManagedProcess(self.name, argv, self.log_path)

    def _ready(self) -> bool:
        with self.client() as client:
            return bool(client.ping())
