"""manifests/images/requirements.lock: the product's dependencies for the image, pinned with hashes.

Generated from pyproject's `dependencies` by pip's own resolver (`pip install --dry-run --report`,
binary wheels only) evaluated by the host's Debian /usr/bin/python3, the image's very interpreter:
environment markers are the image's (redis needs async-timeout below Python 3.11.3: Debian's 3.11.2
does, this venv's newer 3.11 would not). Every package of the closure with its version and the
sha256 of the wheel pip chose.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from flashsale_dev.image_build.product import IMAGE_PYTHON

HEADER: Final = (
    "# The product image's Python dependencies: binary wheels for CPython 3.11 on Linux x86_64.\n"
    "# Generated from pyproject.toml by `python -m flashsale_dev.image_build --update-locks`;\n"
    "# installed with --require-hashes --no-deps (docs/images.md).\n"
)


def project_dependencies(pyproject: Path) -> list[str]:
    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def canonical_name(name: str) -> str:
    """PEP 503: `Prometheus_Client` -> `prometheus-client`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def render_lock(installs: Iterable[Mapping[str, Any]]) -> str:
    """pip's report `install` entries -> `name==version --hash=sha256:...` lines, sorted by name."""
    lines = []
    for item in installs:
        name, version = canonical_name(item["metadata"]["name"]), item["metadata"]["version"]
        digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{digest}\n")
    return HEADER + "".join(sorted(lines))


def resolve(pyproject: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable, "-m", "pip", "--python", IMAGE_PYTHON, "install", "-q", "--dry-run",
                "--ignore-installed", "--disable-pip-version-check",
                "--only-binary=:all:", "--report", str(report), *project_dependencies(pyproject),
            ],
            check=True,
        )  # fmt: skip
        return render_lock(json.loads(report.read_text())["install"])
