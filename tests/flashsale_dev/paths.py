"""Where things live: the pinned versions, the cache of built/fetched tools, the Debian binaries."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # tests/flashsale_dev/paths.py -> the checkout
BUILD_DIR = Path(__file__).parent / "build"
VERSIONS_FILE = BUILD_DIR / "versions.env"
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


@functools.cache
def versions() -> dict[str, str]:
    """The pinned versions from versions.env (the one file that names them)."""
    pinned = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            pinned[key.strip()] = value.strip()
    return pinned


def cache_dir() -> Path:
    """The cache of expensive downloads and builds, outside the repository."""
    return Path(os.environ.get("FLASHSALE_CACHE", Path.home() / ".cache" / "flashsale"))


def kafka_libs() -> Path:
    return cache_dir() / f"kafka-{versions()['KAFKA_VERSION']}" / "libs"


def tool_dir(tool: str) -> Path:
    """The cached build of one pinned tool: k8s, etcd, kwok, helm, coredns or containerd."""
    if tool == "k8s":  # the dir also names the set of binaries built (control plane + node)
        pinned = versions()
        return cache_dir() / "bin" / f"k8s-{pinned['KUBERNETES_VERSION']}-{pinned['KUBERNETES_BUILD_RECIPE']}"
    return cache_dir() / "bin" / f"{tool}-{versions()[f'{tool.upper()}_VERSION']}"


def require_binary(path: Path | str, hint: str = "run `make setup`") -> Path:
    """The path of an executable, or a clear error saying how to get it."""
    resolved = Path(path) if os.sep in str(path) else Path(shutil.which(str(path)) or path)
    if not (resolved.is_file() and os.access(resolved, os.X_OK)):
        raise FileNotFoundError(f"{path} is missing: {hint}")
    return resolved
