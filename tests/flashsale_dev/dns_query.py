"""A DNS A-record query over UDP, with the standard library only: how tests ask the cluster's CoreDNS
directly, from the host, without touching the host's own resolver.
"""

from __future__ import annotations

import random
import socket
import struct
from dataclasses import dataclass

A, IN = 1, 1
NXDOMAIN = 3


@dataclass(frozen=True)
class Answer:
    rcode: int  # 0 NOERROR, 3 NXDOMAIN, 2 SERVFAIL...
    addresses: tuple[str, ...]  # sorted


def build_query(name: str, query_id: int) -> bytes:
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)  # recursion desired, one question
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.rstrip(".").split("."))
    return header + labels + b"\0" + struct.pack("!HH", A, IN)


def _skip_name(message: bytes, offset: int) -> int:
    while True:
        length = message[offset]
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def parse_answer(message: bytes, query_id: int) -> Answer:
    ident, flags, questions, answers = struct.unpack("!HHHH", message[:8])
    if ident != query_id:
        raise ValueError("an answer to another query")
    offset = 12
    for _ in range(questions):
        offset = _skip_name(message, offset) + 4
    found = []
    for _ in range(answers):
        offset = _skip_name(message, offset)
        kind, klass, _ttl, length = struct.unpack("!HHIH", message[offset : offset + 10])
        offset += 10
        if kind == A and klass == IN:
            found.append(socket.inet_ntoa(message[offset : offset + length]))
        offset += length
    return Answer(flags & 0xF, tuple(sorted(found)))


def query_a(server: str, name: str, port: int = 53, timeout: float = 2.0) -> Answer:
    query_id = random.randrange(1 << 16)  # matching replies, not security
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(build_query(name, query_id), (server, port))
        return parse_answer(sock.recv(4096), query_id)
