"""Golden files for rendered manifests: compared, or rewritten with UPDATE_GOLDEN=1 (review the diff)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def golden_name(child: dict[str, Any]) -> str:
    return f"{child['kind'].lower()}-{child['metadata']['name']}.yaml"


def assert_matches_golden(child: dict[str, Any], directory: Path) -> None:
    path = directory / golden_name(child)
    rendered = yaml.safe_dump(child, sort_keys=False, default_flow_style=False, width=100)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered)
    assert path.exists(), f"no golden file {path}: run with UPDATE_GOLDEN=1 and review it"
    assert rendered == path.read_text(), f"{path.name} changed: UPDATE_GOLDEN=1 rewrites it; review the diff"
