"""Content keys: a hash of everything that goes into a base or an image, so a warm build skips it.

A key covers file names and contents (never mtimes), plus any extra strings (package lists, the
epoch, the version). The product's sources are found as setuptools finds them: pyproject's
`packages.find` directories and include patterns, so the key follows the wheel's real contents.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

IGNORED_PARTS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


def files_under(*roots: Path) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        if root.is_file():
            found.append(root)
        elif root.is_dir():
            found += [p for p in root.rglob("*") if p.is_file() and not IGNORED_PARTS & set(p.parts)]
    return sorted(set(found))


def content_key(files: Iterable[Path], base: Path, *extra: str) -> str:
    """sha256 over each file's path relative to `base` and its bytes, then the extra strings."""
    digest = hashlib.sha256()
    for path in sorted(files):
        name = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.name
        digest.update(f"file {name} {path.stat().st_size}\n".encode())
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    for item in extra:
        digest.update(f"extra {len(item)}\n{item}".encode())
    return digest.hexdigest()[:32]


# Where the product's packages live when pyproject does not say it with `packages.find`.
PRODUCT_DIRS = ("operator", "services")


def product_sources(repo: Path) -> list[Path]:
    """pyproject.toml and every package directory its setuptools configuration would find (or, for
    another configuration, everything under the product's directories: more rebuilds, never stale)."""
    pyproject = repo / "pyproject.toml"
    config = tomllib.loads(pyproject.read_text())
    pyproject_files = [pyproject, *_metadata_files(repo, config.get("project", {}))]
    packages_config = config.get("tool", {}).get("setuptools", {}).get("packages", {})
    find = packages_config.get("find") if isinstance(packages_config, dict) else None
    if not find:
        return [*pyproject_files, *files_under(*(repo / d for d in PRODUCT_DIRS))]
    packages: list[Path] = []
    for where in find.get("where", ["."]):
        for pattern in find.get("include", ["*"]):
            packages += [p for p in (repo / where).glob(pattern) if (p / "__init__.py").is_file()]
    return [*pyproject_files, *files_under(*packages)]


def _metadata_files(repo: Path, project: dict[str, Any]) -> list[Path]:
    """The readme and license files pyproject's metadata names (building the wheel reads them)."""
    names: list[str] = []
    readme = project.get("readme")
    if isinstance(readme, str):
        names.append(readme)
    for key in ("readme", "license"):
        table = project.get(key)
        if isinstance(table, dict) and "file" in table:
            names.append(table["file"])
    names += project.get("license-files", [])
    return [repo / name for name in names if (repo / name).is_file()]
