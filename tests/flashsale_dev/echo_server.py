"""The image `flashsale/echo`: a tiny HTTP server that says which pod answered.

Binds $POD_IP:$PORT (the node agent gives every pod its own loopback address). GET /healthz -> 200;
GET / -> {"pod", "namespace", "ip", "pid"} as JSON. SIGTERM ends it cleanly, as a container's stop.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._reply(200, b"ok\n", "text/plain")
        elif self.path == "/":
            body = {
                "pod": os.environ.get("POD_NAME", ""),
                "namespace": os.environ.get("POD_NAMESPACE", ""),
                "ip": os.environ.get("POD_IP", ""),
                "pid": os.getpid(),
            }
            self._reply(200, json.dumps(body).encode(), "application/json")
        else:
            self._reply(404, b"not found\n", "text/plain")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main() -> None:
    host = os.environ.get("POD_IP", "127.0.0.1")
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True

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
