"""The project's images, as the node agent runs them: `flashsale/<name>` -> a local command.

On a real cluster these are container images; locally the node agent runs the same code as a process
of this Python. Like a Dockerfile, an entry gives the ENTRYPOINT, an optional default CMD and ENV; a
container's `command` replaces the entrypoint, its `args` replace the CMD, its `env` overrides ENV.
Only the repository counts (`flashsale/echo:dev` and `flashsale/echo:1.2` run the same code).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from flashsale_dev.paths import REPO_ROOT, cache_dir

PROJECT_PREFIX = "flashsale/"


@dataclass(frozen=True)
class ImageSpec:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


_PYTHON_ENV = {"PYTHONUNBUFFERED": "1"}  # as the images' Dockerfiles set it: logs reach the file at once
_FLASHSALE = (sys.executable, "-m", "flashsale_cli")  # the images' ENTRYPOINT ["flashsale"]

PROJECT_IMAGES: Mapping[str, ImageSpec] = MappingProxyType(
    {
        "flashsale/gateway": ImageSpec(_FLASHSALE, ("gateway",), env=_PYTHON_ENV),
        "flashsale/consumer": ImageSpec(_FLASHSALE, ("consumer",), env=_PYTHON_ENV),
        "flashsale/operator": ImageSpec((sys.executable, "-m", "flashsale_operator"), env=_PYTHON_ENV),
        # Test-only: the operator with the test platform's kill points (flashsale_dev.operator_test_build).
        "flashsale/operator-test": ImageSpec(
            (sys.executable, "-m", "flashsale_dev.operator_test_build"), env=_PYTHON_ENV
        ),
        # A dedicated queue's broker: the apache/kafka image's env contract over the cached jars.
        "flashsale/kafka": ImageSpec((sys.executable, "-m", "flashsale_dev.kafka_image"), env=_PYTHON_ENV),
        "flashsale/echo": ImageSpec((sys.executable, "-m", "flashsale_dev.echo_server"), env=_PYTHON_ENV),
        # Test-only: shows what a pod sees from inside (files, names, Services).
        "flashsale/probe": ImageSpec((sys.executable, "-m", "flashsale_dev.probe_server"), env=_PYTHON_ENV),
    }
)


def image_roots() -> list[str]:
    """Where a project image's files are, locally: the checkout, this venv, the Python it was made from
    and the tool cache (the Kafka jars). In a container they are the image's root file system, never
    under a volume; here a volume over an ancestor (an emptyDir at /tmp, with a checkout under /tmp)
    would hide them, so the node agent shows them again on top of the pod's volumes."""
    roots = sorted({str(Path(p).resolve()) for p in (REPO_ROOT, sys.prefix, sys.base_prefix, cache_dir())})
    return [r for r in roots if not any(r.startswith(other + "/") for other in roots if other != r)]


def split_image(image: str) -> tuple[str, str]:
    """`repo[:tag][@digest]` -> (repository, tag or digest); the tag defaults to `latest`."""
    name, _, digest = image.partition("@")
    repository, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:  # no tag, or the colon belonged to a registry's port
        repository, tag = name, ""
    return repository, digest or tag or "latest"


def is_project_image(image: str) -> bool:
    return split_image(image)[0].startswith(PROJECT_PREFIX)


def find_image(image: str, images: Mapping[str, ImageSpec] = PROJECT_IMAGES) -> ImageSpec | None:
    return images.get(split_image(image)[0])


def compose_argv(spec: ImageSpec, command: Sequence[str] | None, args: Sequence[str] | None) -> list[str]:
    """Docker's rule: `command` replaces ENTRYPOINT and drops CMD; `args` replaces CMD."""
    if command:
        return [*command, *(args or ())]
    return [*spec.entrypoint, *(args if args else spec.cmd)]
