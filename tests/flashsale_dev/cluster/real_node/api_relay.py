"""A TCP relay from inside a node's network namespace to the API server on the host's loopback.

The control plane binds 127.0.0.1 only, and a network namespace has a loopback of its own, so a
kubelet there cannot reach it. This process opens its listening socket inside the node's namespace
(setns, bind, setns back: a socket stays in the namespace it was made in) and connects out from the
host's. The bytes pass unchanged: TLS and client-certificate authentication stay end to end, and
the API server's certificate already names 127.0.0.1. Nothing on the host listens on a new address.

    python -I api_relay.py NETNS_PATH LISTEN_PORT UPSTREAM_PORT   (standard library only)
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import sys

_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


def listen_inside(netns_path: str, port: int) -> socket.socket:
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(netns_path, os.O_RDONLY)
    try:
        _setns(target)
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(128)
    finally:
        _setns(own)
        os.close(own)
        os.close(target)
    return server


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


async def serve(server: socket.socket, upstream_port: int) -> None:
    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    listener = await asyncio.start_server(relay, sock=server)
    async with listener:
        await listener.serve_forever()


def main(argv: list[str]) -> None:
    netns_path, listen_port, upstream_port = argv
    server = listen_inside(netns_path, int(listen_port))
    print(f"relaying {netns_path} 127.0.0.1:{listen_port} -> host 127.0.0.1:{upstream_port}", flush=True)
    asyncio.run(serve(server, int(upstream_port)))


if __name__ == "__main__":
    main(sys.argv[1:])
