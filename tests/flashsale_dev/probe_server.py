"""The image `flashsale/probe`: shows a test what a pod sees from inside, over HTTP.

Binds $POD_IP:$PORT (default 8080). Test-only, on the pod's own loopback address:
- GET /healthz; GET /env (the process's environment); GET /hostname -> {"hostname", "fqdn"};
- GET /file?path=P -> {"content", "mode"} (the mode of the file a symlink leads to);
- GET /ls?path=P -> sorted names; PUT /file?path=P writes the body;
- GET /resolve?name=N -> the addresses getaddrinfo gives (the pod's own resolv.conf and hosts);
- GET /get?url=U -> {"status", "body"} of a GET made from inside the pod.
Errors come back as {"error": "..."} with status 500.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit


def _file(path: str) -> dict[str, Any]:
    with open(path, "rb") as handle:
        content = handle.read().decode(errors="replace")
    return {"content": content, "mode": f"{os.stat(path).st_mode & 0o7777:04o}"}


def _resolve(name: str) -> dict[str, Any]:
    infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    return {"addresses": sorted({str(info[4][0]) for info in infos})}


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - a test's own URL
        return {"status": answer.status, "body": answer.read().decode(errors="replace")}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        actions: dict[str, Callable[[], dict[str, Any]]] = {
            "/healthz": lambda: {"ok": True},
            "/env": lambda: dict(os.environ),
            "/hostname": lambda: {"hostname": socket.gethostname(), "fqdn": socket.getfqdn()},
            "/file": lambda: _file(query["path"]),
            "/ls": lambda: {"names": sorted(os.listdir(query["path"]))},
            "/resolve": lambda: _resolve(query["name"]),
            "/get": lambda: _get(query["url"]),
        }
        action = actions.get(url.path)
        if action is None:
            self._reply(404, {"error": f"no such endpoint {url.path}"})
            return
        try:
            self._reply(200, action())
        except Exception as error:
            self._reply(500, {"error": f"{type(error).__name__}: {error}"})

    def do_PUT(self) -> None:
        url = urlsplit(self.path)
        path = parse_qs(url.query)["path"][0]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            with open(path, "wb") as handle:
                handle.write(body)
            self._reply(200, {"written": len(body)})
        except OSError as error:
            self._reply(500, {"error": f"{type(error).__name__}: {error}"})

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main() -> None:
    host = os.environ.get("POD_IP", "127.0.0.1")
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    print(f"probe server listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
