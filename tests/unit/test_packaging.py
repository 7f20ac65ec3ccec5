"""What `pip install .` ships: the product's packages and the `flashsale` script, and nothing of the
local platform or the benchmarks, which are a distribution of their own (tests/pyproject.toml).

The wheels are built offline from a copy of the checkout (so the checkout itself gets no build/ or
egg-info), with the venv's own setuptools (`pip wheel --no-build-isolation`).
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import flashsale_sale
from flashsale_dev.paths import REPO_ROOT

PRODUCT_PACKAGES = {
    "flashsale_sale",
    "flashsale_gateway",
    "flashsale_consumer",
    "flashsale_operator",
    "flashsale_load",
    "flashsale_cli",
}
VERSION = flashsale_sale.__version__
_LEFT_OUT = {"build", "tests/artifacts", "bench/out"}  # outputs in the checkout, not sources


def _not_sources(directory: str, names: list[str]) -> set[str]:
    """What a fresh clone would not have: caches, the venv, build outputs."""
    where = Path(directory).relative_to(REPO_ROOT)
    return {
        name
        for name in names
        if name.startswith(".") or name == "__pycache__" or name.endswith(".egg-info")
        or (where / name).as_posix() in _LEFT_OUT
    }  # fmt: skip


def _build_wheel(project: Path, out: Path) -> zipfile.ZipFile:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(out), str(project)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


def _top_level(wheel: zipfile.ZipFile) -> set[str]:
    return {name.split("/", 1)[0] for name in wheel.namelist()}


def _console_scripts(wheel: zipfile.ZipFile, dist_info: str) -> dict[str, str]:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel.read(f"{dist_info}/entry_points.txt").decode())
    return dict(entry_points["console_scripts"])


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole checkout as `pip install .` sees it: a packaging mistake cannot hide in what is left out."""
    copy = tmp_path_factory.mktemp("checkout") / "flashsale"
    shutil.copytree(REPO_ROOT, copy, ignore=_not_sources)
    return copy


@pytest.fixture(scope="module")
def product_wheel(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    return _build_wheel(checkout, tmp_path_factory.mktemp("product"))


@pytest.fixture(scope="module")
def platform_wheel(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    return _build_wheel(checkout / "tests", tmp_path_factory.mktemp("platform"))


def test_the_product_wheel_holds_the_product_packages_and_nothing_else(
    product_wheel: zipfile.ZipFile,
) -> None:
    assert _top_level(product_wheel) == {*PRODUCT_PACKAGES, f"flashsale-{VERSION}.dist-info"}
    names = set(product_wheel.namelist())
    assert {f"{package}/py.typed" for package in PRODUCT_PACKAGES} <= names
    assert {"flashsale_gateway/static/sale.css", "flashsale_gateway/static/sale.js"} <= names


def test_the_product_wheel_has_the_flashsale_script_only(product_wheel: zipfile.ZipFile) -> None:
    scripts = _console_scripts(product_wheel, f"flashsale-{VERSION}.dist-info")
    assert scripts == {"flashsale": "flashsale_cli.main:main"}


def test_the_local_platform_wheel_holds_flashsale_dev_its_data_and_its_script(
    platform_wheel: zipfile.ZipFile,
) -> None:
    assert _top_level(platform_wheel) == {"flashsale_dev", f"flashsale_dev-{VERSION}.dist-info"}
    names = set(platform_wheel.namelist())
    package = REPO_ROOT / "tests" / "flashsale_dev"
    data = {
        path.relative_to(package.parent).as_posix()
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"}
    }
    data.add("flashsale_dev/skewed_clock/sitecustomize.py")  # a directory put on PYTHONPATH, no package
    assert data <= names, "package-data in tests/pyproject.toml misses files the platform reads"
    scripts = _console_scripts(platform_wheel, f"flashsale_dev-{VERSION}.dist-info")
    assert scripts == {"flashsale-dev": "flashsale_dev.cli:main"}


def test_the_local_platform_has_the_project_version_and_requires_the_product() -> None:
    project = tomllib.loads((REPO_ROOT / "tests" / "pyproject.toml").read_text())["project"]
    assert project["version"] == VERSION
    assert "flashsale" in project["dependencies"]


def test_installing_the_product_wheel_into_an_empty_venv_brings_no_local_platform_or_bench(
    product_wheel: zipfile.ZipFile, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    assert product_wheel.filename is not None
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
         product_wheel.filename],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    importable = "import importlib.util as u, sys; print(*(n for n in sys.argv[1:] if u.find_spec(n)))"
    names = [*sorted(PRODUCT_PACKAGES), "flashsale_dev", "bench"]
    found = subprocess.run(
        [str(python), "-I", "-c", importable, *names],
        check=True, capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert set(found.stdout.split()) == PRODUCT_PACKAGES  # neither flashsale_dev nor bench
    assert (venv / "bin" / "flashsale").exists()
    assert not (venv / "bin" / "flashsale-dev").exists()
