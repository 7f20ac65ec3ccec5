"""Image names as the CRI looks them up: kubelet asks for `flashsale/pause:0.1.0`, containerd's CRI
normalizes that to `docker.io/flashsale/pause:0.1.0` and finds only an image stored under that name.
An OCI archive may name its images in the short form (`make images` does), so after an import each
short name gets its normalized twin (`ctr images tag`), as `kind load` leaves them.
"""

from __future__ import annotations

DEFAULT_DOMAIN = "docker.io"


def normalized(name: str) -> str:
    """The docker-style full name: a domain first (and `library/` for a one-part official name)."""
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return name  # already names its registry
    return f"{DEFAULT_DOMAIN}/{name}" if rest else f"{DEFAULT_DOMAIN}/library/{name}"


def missing_twins(stored: list[str]) -> dict[str, str]:
    """Short names among `stored` (ctr's `images ls -q`) whose normalized name is not stored yet."""
    present = set(stored)
    return {
        name: normalized(name)
        for name in stored
        if not name.startswith("sha256:") and normalized(name) != name and normalized(name) not in present
    }
