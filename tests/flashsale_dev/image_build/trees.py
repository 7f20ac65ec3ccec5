"""The own layers of the kafka and pause images, as directory trees to pack.

kafka: the jars the platform fetches (`make setup-kafka`), the log4j 2 configuration (stdout, the same as
the platform's broker's), the entrypoint script and the data directory owned by the non-root user.
pause: one static binary built from manifests/images/pause/pause.c with the host's gcc.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Final

from flashsale_dev.image_build.debian import APP_UID

KAFKA_HOME: Final = "opt/kafka"
KAFKA_DATA: Final = "var/lib/kafka/data"
KAFKA_OWNED: Final = {"var/lib/kafka": (APP_UID, APP_UID), KAFKA_DATA: (APP_UID, APP_UID)}
GCC_FLAGS: Final = ("-static", "-Os", "-s", "-Wall", "-Werror", "-Wl,--build-id=none")


def kafka_tree(libs: Path, sources: Path, root: Path) -> Path:
    """`sources`: manifests/images/kafka (entrypoint.sh, log4j2.properties)."""
    jars = root / KAFKA_HOME / "libs"
    jars.mkdir(parents=True)
    for jar in sorted(libs.glob("*.jar")):
        shutil.copyfile(jar, jars / jar.name)
    config = root / KAFKA_HOME / "config"
    config.mkdir()
    shutil.copyfile(sources / "log4j2.properties", config / "log4j2.properties")
    bin_dir = root / "usr/local/bin"
    bin_dir.mkdir(parents=True)
    shutil.copyfile(sources / "entrypoint.sh", bin_dir / "kafka-entrypoint")
    (bin_dir / "kafka-entrypoint").chmod(0o755)
    (root / KAFKA_DATA).mkdir(parents=True)
    return root


def gcc_version() -> str:
    return subprocess.run(
        ["gcc", "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]


def pause_tree(source: Path, root: Path) -> Path:
    root.mkdir(parents=True)
    # The source's directory is mapped away so the binary does not depend on where the repo lives.
    prefix_map = f"-ffile-prefix-map={source.parent}=."
    subprocess.run(["gcc", *GCC_FLAGS, prefix_map, "-o", str(root / "pause"), str(source)], check=True)
    (root / "pause").chmod(0o755)
    return root
