"""Containers that run no process: images that are not the project's, and unknown project images.

A container of another image (say a third-party sidecar) is *simulated*: reported running and ready
at once, as kwok would, with no process behind it. An unknown `flashsale/*` image is a mistake in
images.py or a manifest: it waits with reason ImageNotKnown, as a kubelet does for an image it may
not pull.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flashsale_dev.cluster.node_agent import lifecycle


class _NoProcess:
    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.name: str = spec["name"]
        self.image: str = spec.get("image", "")
        self.finished = False

    def tick(self, now: float) -> None:
        pass

    def begin_stop(self, now: float, grace: float) -> None:
        self.finished = True

    def stopped(self, now: float) -> bool:
        return True

    def kill(self) -> None:
        self.finished = True


class SimulatedContainer(_NoProcess):
    """Running and ready at once; an init container (`completes`) has at once exited 0."""

    def __init__(
        self, spec: Mapping[str, Any], pod_uid: str, started_at: float, *, completes: bool = False
    ) -> None:
        super().__init__(spec)
        self._container_id = f"flashsale-simulated://{pod_uid}/{self.name}"
        self._started_at = started_at
        self._completes = completes

    def status(self) -> dict[str, Any]:
        if self._completes:
            state = lifecycle.terminated(0, self._started_at, self._started_at, self._container_id)
        else:
            state = lifecycle.running(self._started_at)
        return {
            "name": self.name,
            "image": self.image,
            "imageID": f"flashsale-simulated://{self.image}",
            "containerID": self._container_id,
            "state": state,
            "lastState": {},
            "ready": not self._completes,
            "restartCount": 0,
            "started": not self._completes,
        }


class UnknownImageContainer(_NoProcess):
    def status(self) -> dict[str, Any]:
        message = (
            f"image {self.image!r} is a project image (flashsale/*) the node agent does not know: "
            "add it to PROJECT_IMAGES in flashsale_dev/cluster/images.py"
        )
        return {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "state": lifecycle.waiting("ImageNotKnown", message),
            "lastState": {},
            "ready": False,
            "restartCount": 0,
            "started": False,
        }
