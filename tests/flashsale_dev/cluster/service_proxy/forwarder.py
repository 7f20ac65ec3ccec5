"""TCP forwarding for ClusterIP:port, as kube-proxy's old userspace mode did it (asyncio).

One listening socket per Service port, bound to the ClusterIP itself (all of 127.0.0.0/8 is on
`lo`). Each accepted connection goes to the next backend in turn (round robin), trying the others
if one refuses. A Service port with no Ready endpoint has no listener at all, so a client is
refused by the kernel at once, as a real cluster's REJECT rule does.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from collections.abc import Mapping

from flashsale_dev.cluster.endpoints import Backend

log = logging.getLogger(__name__)

Address = tuple[str, int]
CONNECT_TIMEOUT = 5.0
CHUNK = 64 * 1024


class Forwarder:
    def __init__(self) -> None:
        self._servers: dict[Address, asyncio.Server] = {}
        self._backends: dict[Address, list[Backend]] = {}
        self._turns: dict[Address, itertools.count[int]] = {}

    @property
    def listening(self) -> set[Address]:
        return set(self._servers)

    async def apply(self, routes: Mapping[Address, list[Backend]]) -> bool:
        """Listen where there are backends, stop where there are none; False if a bind failed."""
        self._backends = {address: list(backends) for address, backends in routes.items()}
        for address in list(self._servers):
            if not self._backends.get(address):
                self._servers.pop(address).close()  # established connections carry on
        complete = True
        for address, backends in self._backends.items():
            if backends and address not in self._servers:
                try:
                    handler = functools.partial(self._handle, address)
                    self._servers[address] = await asyncio.start_server(handler, *address)
                except OSError as error:
                    log.warning("cannot listen on %s:%s: %s", *address, error)
                    complete = False
        return complete

    async def close(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()

    async def _handle(
        self, address: Address, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        upstream = await self._connect(address)
        if upstream is None:
            writer.transport.abort()  # a reset: nothing behind this Service answers
            return
        up_reader, up_writer = upstream
        pipes = [asyncio.create_task(_pipe(reader, up_writer)), asyncio.create_task(_pipe(up_reader, writer))]
        done, _ = await asyncio.wait(pipes, return_when=asyncio.FIRST_EXCEPTION)
        if any(task.exception() for task in done):  # a reset on one side resets the other
            writer.transport.abort()
            up_writer.transport.abort()
        await asyncio.gather(*pipes, return_exceptions=True)
        writer.close()
        up_writer.close()

    async def _connect(self, address: Address) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        backends = self._backends.get(address) or []
        turn = next(self._turns.setdefault(address, itertools.count()))
        for i in range(len(backends)):
            backend = backends[(turn + i) % len(backends)]
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(backend.ip, backend.port), CONNECT_TIMEOUT
                )
            except (OSError, TimeoutError) as error:
                log.info("%s:%s -> %s:%s failed: %s", *address, backend.ip, backend.port, error)
        return None


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then pass the half-close on (a client may half-close first)."""
    while data := await source.read(CHUNK):
        sink.write(data)
        await sink.drain()
    if sink.can_write_eof():
        sink.write_eof()
