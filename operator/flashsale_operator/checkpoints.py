"""Named moments of a sale's life that a test build of the operator may hook; no-ops in the product.

The operator calls `checkpoint(step, body)` right after a few steps whose interruption a restart must
survive: `prewarmed` (the gate built, nothing recorded yet), `before-start` (less than a second
before startsAt), `flipped` (the start flag on, the status not yet Live), `live` (the status says
Live) and `scaled` (a scale written, no status or Event yet). `body` is the FlashSale as kopf gave
it to the loop.

Nothing in this package installs a hook: no environment variable, setting or annotation can. Only
code that imports the operator and calls `set_hook` before starting it can - the local platform's
test build (`python -m flashsale_dev.operator_test_build`, with the hook of
tests/flashsale_dev/operator_kill_points.py), which the shipped image and manifests never run. Cheap:
one global read per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

Step = Literal["prewarmed", "before-start", "flipped", "live", "scaled"]
Hook = Callable[[Step, Mapping[str, Any]], None]

_hook: Hook | None = None


def set_hook(hook: Hook | None) -> None:
    """Installs (or, with None, removes) the one hook; for test builds only."""
    global _hook  # noqa: PLW0603 - the seam is one process-wide slot, set once before the operator starts
    _hook = hook


def checkpoint(step: Step, body: Mapping[str, Any]) -> None:
    """`step` of the sale `body` is done; nothing happens unless a test build installed a hook."""
    if _hook is not None:
        _hook(step, body)
