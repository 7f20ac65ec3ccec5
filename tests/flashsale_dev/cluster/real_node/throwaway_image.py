"""A stand-in image until `make images` (issue 16) is merged: one static binary in a one-layer OCI
archive, made with gcc in a directory the caller owns (a test's tmp dir).

The binary is a pause (the pod sandbox), and a little more so it can serve as a test container:
`/pause log TEXT` prints TEXT and waits; `/pause echo WORDS` prints WORDS and exits (for exec);
`/pause serve PORT TEXT` prints TEXT and answers every TCP connection on PORT with it.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

SOURCE = r"""
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static void done(int sig) { (void)sig; _exit(0); }
static void serve(int port, const char *text) {
    int server = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(server, (struct sockaddr *)&address, sizeof address) || listen(server, 16)) _exit(1);
    printf("%s\n", text); /* only once it listens: the log line says it is ready */
    fflush(stdout);
    for (;;) {
        int client = accept(server, 0, 0);
        if (client < 0) continue;
        dprintf(client, "%s\n", text);
        close(client);
    }
}
int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "echo") == 0) {
        for (int i = 2; i < argc; i++) printf("%s%s", argv[i], i + 1 < argc ? " " : "\n");
        return 0;
    }
    signal(SIGTERM, done);
    signal(SIGINT, done);
    if (argc > 2 && strcmp(argv[1], "log") == 0) { printf("%s\n", argv[2]); fflush(stdout); }
    if (argc > 3 && strcmp(argv[1], "serve") == 0) serve(atoi(argv[2]), argv[3]);
    for (;;) pause();
}
"""

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def build_pause_archive(work: Path, name: str) -> Path:
    """`name` (e.g. docker.io/flashsale/pause:0.1.0) as an OCI archive under `work`."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "pause.c").write_text(SOURCE)
    binary = work / "pause"
    subprocess.run(["gcc", "-static", "-Os", "-o", str(binary), str(work / "pause.c")], check=True)
    archive = work / "pause.oci.tar"
    archive.write_bytes(oci_archive(name, {"pause": binary.read_bytes()}, ["/pause"]))
    return archive


def oci_archive(name: str, files: dict[str, bytes], entrypoint: list[str]) -> bytes:
    """An OCI image layout, as a tar, holding one image of one layer with `files` (mode 0755)."""
    layer = _tar({path: (content, 0o755) for path, content in files.items()})
    config = _json({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": entrypoint},
        "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
    })  # fmt: skip
    manifest = _json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": _descriptor(OCI_CONFIG, config), "layers": [_descriptor(OCI_LAYER, layer)],
    })  # fmt: skip
    tag = name.rsplit(":", 1)[1]
    index = _json({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            **_descriptor(OCI_MANIFEST, manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
        }],
    })  # fmt: skip
    blobs = {f"blobs/sha256/{_digest(b).split(':')[1]}": (b, 0o644) for b in (layer, config, manifest)}
    return _tar(
        {"oci-layout": (_json({"imageLayoutVersion": "1.0.0"}), 0o644), "index.json": (index, 0o644), **blobs}
    )


def _tar(entries: dict[str, tuple[bytes, int]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, (content, mode) in sorted(entries.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(content), mode, 0
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _digest(blob: bytes) -> str:
    return f"sha256:{hashlib.sha256(blob).hexdigest()}"


def _descriptor(media_type: str, blob: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": _digest(blob), "size": len(blob)}
