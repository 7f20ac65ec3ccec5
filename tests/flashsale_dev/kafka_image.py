"""The `flashsale/kafka` image as the node agent runs it: the apache/kafka image's contract, locally.

What the official image (apache/kafka, docker/ in the Kafka repository) does with its environment,
done with the platform's cached jars (`make setup`) and the host's `java`:

- every `KAFKA_<NAME>` variable (but the launcher's own: KAFKA_HEAP_OPTS, KAFKA_OPTS, ...) is the
  property `<name>` with `___` -> `-`, `__` -> `_`, `_` -> `.`, lower case (`KAFKA_LOG_DIRS` ->
  `log.dirs`), written to a server.properties (under /tmp, the pod's emptyDir, as in the built image);
- `CLUSTER_ID` (required) formats the log directory at the first start; a directory already formatted
  is left as it is (`--ignore-formatted`), so a restarted pod keeps its topics and offsets;
- then the broker runs in the foreground (this process `exec`s the JVM, so the node agent's SIGTERM
  reaches Kafka itself: a controlled shutdown);
- `KAFKA_HEAP_OPTS` replaces the heap options, `KAFKA_OPTS` is appended to the JVM's.

The JVM options and the logging set-up (log4j 2 to stdout, which the node agent writes to the pod's
log) are the platform broker's (components/kafka.py).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from flashsale_dev.components.kafka import JVM_OPTIONS, LOG4J2
from flashsale_dev.paths import kafka_libs, require_binary

# The launcher's variables, not broker properties (the official image skips the same names).
LAUNCHER: Final = frozenset(
    {
        "KAFKA_VERSION",
        "KAFKA_HOME",
        "KAFKA_DEBUG",
        "KAFKA_OPTS",
        "KAFKA_HEAP_OPTS",
        "KAFKA_JVM_PERFORMANCE_OPTS",
        "KAFKA_GC_LOG_OPTS",
        "KAFKA_JMX_OPTS",
        "KAFKA_LOG4J_OPTS",
        "KAFKA_LOG4J_LOGGERS",
        "KAFKA_LOG4J_ROOT_LOGLEVEL",
        "KAFKA_TOOLS_LOG4J_LOGLEVEL",
    }
)
FORMAT_TIMEOUT_SECONDS: Final = 120


class ImageError(Exception):
    """A configuration the image refuses (the message says which variable)."""


def property_name(variable: str) -> str:
    """`KAFKA_LOG_DIRS` -> `log.dirs`, `KAFKA_A__B` -> `a_b`, `KAFKA_A___B` -> `a-b`."""
    name = variable.removeprefix("KAFKA_").lower()
    return name.replace("___", "-").replace("__", "\0").replace("_", ".").replace("\0", "_")


def broker_properties(env: Mapping[str, str]) -> dict[str, str]:
    found = {
        property_name(name): value
        for name, value in sorted(env.items())
        if name.startswith("KAFKA_") and name not in LAUNCHER
    }
    for required in ("node.id", "process.roles", "listeners", "log.dirs"):
        if required not in found:
            raise ImageError(f"KAFKA_{required.replace('.', '_').upper()} is not set")
    return found


def jvm_options(env: Mapping[str, str]) -> list[str]:
    options = list(JVM_OPTIONS)
    heap = shlex.split(env.get("KAFKA_HEAP_OPTS", ""))
    if heap:
        options = [o for o in options if not o.startswith(("-Xms", "-Xmx"))] + heap
    return [*options, *shlex.split(env.get("KAFKA_OPTS", ""))]


def format_argv(java: list[str], properties: Path, cluster_id: str, settings: Mapping[str, str]) -> list[str]:
    # `--cluster-id=<id>`: an id starting with "-" would otherwise be read as an option.
    argv = [*java, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(properties)]
    if "controller.quorum.bootstrap.servers" in settings and "controller.quorum.voters" not in settings:
        argv.append("--standalone")  # a dynamic quorum of this one controller
    return [*argv, "--ignore-formatted"]


def formatted(settings: Mapping[str, str]) -> bool:
    return all((Path(d) / "meta.properties").is_file() for d in settings["log.dirs"].split(","))


def main() -> int:
    env = dict(os.environ)
    try:
        settings = broker_properties(env)
        cluster_id = env.get("CLUSTER_ID", "")
        if not cluster_id:
            raise ImageError("CLUSTER_ID is not set")
        libs = kafka_libs()
        if not libs.is_dir():
            raise ImageError(f"Kafka jars missing at {libs}: run `make setup`")
        java_binary = str(require_binary("java", "install a Java 17 runtime"))
    except (ImageError, FileNotFoundError) as error:
        print(f"flashsale/kafka: {error}", file=sys.stderr)
        return 1
    # Under /tmp, as the built image (manifests/images/kafka): the pod's emptyDir, the only writable
    # path besides the data volume.
    config = Path(tempfile.mkdtemp(prefix="kafka-config-"))
    properties, log4j = config / "server.properties", config / "log4j2.properties"
    properties.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    log4j.write_text(LOG4J2)
    java = [java_binary, *jvm_options(env), f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*"]
    if not formatted(settings):
        print(f"flashsale/kafka: formatting {settings['log.dirs']} (cluster {cluster_id})", flush=True)
        done = subprocess.run(
            format_argv(java, properties, cluster_id, settings), check=False, timeout=FORMAT_TIMEOUT_SECONDS
        )
        if done.returncode != 0:
            print("flashsale/kafka: storage format failed", file=sys.stderr)
            return done.returncode or 1
    sys.stdout.flush()
    os.execv(java_binary, [*java, "kafka.Kafka", str(properties)])  # noqa: S606 - the image runs the broker


if __name__ == "__main__":
    raise SystemExit(main())
