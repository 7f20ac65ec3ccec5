"""The server command lines of the baselines, with the options the gateway's own server runs with.

Granian: ASGI, one worker, the loop granian picks (uvloop when installed), backlog 2048, no
websockets, no access log - as `flashsale gateway` serves (services/flashsale_gateway/server.py;
keep the two in step). Uvicorn, "the other common ASGI server", in its fastest form: uvloop and
httptools, one process, no access log.
"""

from __future__ import annotations

from typing import Final

BACKLOG: Final = 2048

GRANIAN_OPTIONS: Final = (
    "--interface", "asgi",
    "--workers", "1",
    "--no-ws",
    "--loop", "auto",
    "--backlog", str(BACKLOG),
    "--no-access-log",
)  # fmt: skip

UVICORN_OPTIONS: Final = (
    "--loop", "uvloop",
    "--http", "httptools",
    "--workers", "1",
    "--backlog", str(BACKLOG),
    "--log-level", "warning",
    "--no-access-log",
    "--lifespan", "on",
)  # fmt: skip


def granian_argv(target: str, port: int) -> list[str]:
    """`granian ...` for an ASGI `module:attribute` on 127.0.0.1:`port` (argv[0] is the script name)."""
    return ["granian", *GRANIAN_OPTIONS, "--host", "127.0.0.1", "--port", str(port), target]


def uvicorn_argv(target: str, port: int) -> list[str]:
    return ["uvicorn", *UVICORN_OPTIONS, "--host", "127.0.0.1", "--port", str(port), target]
