"""The image `flashsale/echo`: a tiny HTTP server that says which pod answered.

Binds $POD_IP:$PORT (the node agent gives every pod its own loopback address). GET /healthz -> 200;
GET / -> {"pod", "namespace", "ip", "pid"} as JSON. For the LoadBalancer edge's cache:
GET /cache/public?max_age=N -> `Cache-Control: public, max-age=N` with an ETag (a matching
If-None-Match gets 304), GET /cache/no-store and /cache/private -> those Cache-Control values,
GET /cache/none -> no Cache-Control at all; GET /count -> how many requests each path (with its
query) has had, as JSON. SIGTERM ends it cleanly, as a container's stop.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from urllib.parse import parse_qs, urlsplit

_counts: collections.Counter[str] = collections.Counter()
_counts_lock = threading.Lock()
_CACHE_CONTROL = {"/cache/no-store": "no-store", "/cache/private": "private, max-age=60", "/cache/none": None}
ETAG = '"echo-v1"'


def _identity() -> dict[str, object]:
    return {
        "pod": os.environ.get("POD_NAME", ""),
        "namespace": os.environ.get("POD_NAMESPACE", ""),
        "ip": os.environ.get("POD_IP", ""),
        "pid": os.getpid(),
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # every reply has a Content-Length: keep connections open
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall between them

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/cache/"):
            with _counts_lock:
                _counts[self.path] += 1
        if self.path == "/healthz":
            self._reply(200, b"ok\n", "text/plain")
        elif self.path == "/":
            self._reply(200, json.dumps(_identity()).encode(), "application/json")
        elif path == "/count":
            with _counts_lock:
                self._reply(200, json.dumps(dict(_counts)).encode(), "application/json")
        elif path == "/cache/public":
            max_age = int(parse_qs(urlsplit(self.path).query).get("max_age", ["60"])[0])
            headers = {"Cache-Control": f"public, max-age={max_age}", "ETag": ETAG}
            if self.headers.get("If-None-Match") == ETAG:
                self._reply(304, b"", "application/json", headers)
            else:
                self._reply(200, json.dumps(_identity()).encode(), "application/json", headers)
        elif path in _CACHE_CONTROL:
            value = _CACHE_CONTROL[path]
            headers = {"Cache-Control": value} if value else {}
            self._reply(200, json.dumps(_identity()).encode(), "application/json", headers)
        else:
            self._reply(404, b"not found\n", "text/plain")

    def _reply(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # not 5: a proxy in front opens connections in bursts
    daemon_threads = True


def main() -> None:
    host = os.environ.get("POD_IP", "127.0.0.1")
    port = int(os.environ.get("PORT", "8080"))
    server = _Server((host, port), _Handler)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return: call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    print(f"echo server listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    print("echo server stopped", flush=True)


if __name__ == "__main__":
    main()
