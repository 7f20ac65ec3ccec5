"""The product layer: the project's wheel and its locked dependencies, installed for Debian's python3.

The wheel is built from the repository's pyproject and the sources it packages, copied aside
(`pip wheel --no-deps --no-build-isolation`); the dependencies are binary wheels pinned with hashes
in manifests/images/requirements.lock. They are
installed with `--require-hashes --no-deps --no-index` into /usr/local/lib/python3.11/dist-packages
(on the image's python3 path), the console script into /usr/local/bin, by pip running under
/usr/bin/python3 so the script's interpreter line is the image's. Bytecode is compiled with hashes
instead of timestamps and with the image's paths, so it is reproducible and never rewritten.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from flashsale_dev.image_build import keys

SITE: Final = "usr/local/lib/python3.11/dist-packages"
BIN: Final = "usr/local/bin"
IMAGE_PYTHON: Final = "/usr/bin/python3"  # the host's Debian python3 runs pip and compileall
PROJECT: Final = "flashsale"


def stage_sources(repo: Path, files: Iterable[Path], dest: Path) -> Path:
    """Copy exactly the files the content key covers: the wheel is built from them alone (no stale
    `build/` of the checkout, nothing the key did not see)."""
    for path in files:
        target = dest / path.relative_to(repo)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return dest


def build_wheel(repo: Path, out: Path, work: Path) -> Path:
    source = stage_sources(repo, keys.product_sources(repo), work / "src")
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
            "-w", str(out), str(source),
        ],
        check=True,
    )  # fmt: skip
    (wheel,) = out.glob(f"{PROJECT}-*.whl")
    return wheel


def download_wheels(lock: Path, wheelhouse: Path) -> None:
    """Fetch the locked wheels (pip checks every hash; files already there are only checked). This
    venv's Python is CPython 3.11 on Linux x86_64 like the image, so pip picks the image's wheels."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes",
            "--only-binary=:all:", "-d", str(wheelhouse), "-r", str(lock),
        ],
        check=True,
    )  # fmt: skip


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def install(lock: Path, wheel: Path, wheelhouse: Path, root: Path, work: Path) -> None:
    """Install the lock plus the project's wheel (pinned by its own hash) under `root`."""
    version = wheel.name.split("-")[1]
    requirements = work / "requirements.txt"
    requirements.write_text(lock.read_text() + f"\n{PROJECT}=={version} --hash=sha256:{sha256_of(wheel)}\n")
    site = root / SITE
    subprocess.run(
        [
            sys.executable, "-m", "pip", "--python", IMAGE_PYTHON, "install", "-q",
            "--no-deps", "--require-hashes", "--only-binary=:all:", "--no-index", "--no-compile",
            "--disable-pip-version-check", "--no-warn-script-location", "--root-user-action=ignore",
            "--find-links", str(wheelhouse), "--find-links", str(wheel.parent),
            "--target", str(site), "-r", str(requirements),
        ],
        check=True,
    )  # fmt: skip
    (root / BIN).mkdir(parents=True, exist_ok=True)
    for script in sorted((site / "bin").iterdir()):
        shutil.move(script, root / BIN / script.name)
    (site / "bin").rmdir()
    # Found through --find-links, nothing records a direct URL; make sure no build path remains.
    for stray in site.glob("*.dist-info/direct_url.json"):
        stray.unlink()


def compile_bytecode(root: Path) -> None:
    """Unchecked-hash pycs (never compared with the source's mtime) naming the image's own paths."""
    subprocess.run(
        [
            IMAGE_PYTHON, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
            "-s", str(root), "-p", "/", str(root / SITE),
        ],
        check=True,
    )  # fmt: skip


def build_layer_tree(repo: Path, lock: Path, wheelhouse: Path, work: Path) -> Path:
    """The product layer's files under `work/root`."""
    root = work / "root"
    wheel = build_wheel(repo, work / "dist", work)
    download_wheels(lock, wheelhouse)
    install(lock, wheel, wheelhouse, root, work)
    compile_bytecode(root)
    return root
