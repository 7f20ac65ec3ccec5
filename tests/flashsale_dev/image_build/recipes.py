"""What each image is: its base, the tree of its own layer, its tags and runtime configuration.

The product is one image with three tags that differ only in their command (the Containerfile's
ENTRYPOINT/CMD): `flashsale/gateway` and `flashsale/consumer` run the `flashsale` console script with
their subcommand as CMD (a pod's `args` replace it), `flashsale/operator` runs
`python3 -m flashsale_operator`. Layers are shared, so the three cost the disk and a node once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from flashsale_dev.image_build.debian import APP_UID
from flashsale_dev.image_build.oci import ImageConfig

PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PAUSE_UID: Final = 65535
SOURCE_LABEL: Final = "org.opencontainers.image.source"


@dataclass(frozen=True)
class Base:
    """A Debian rootfs: variant essential plus these packages (manifests/images/debian.lock [name])."""

    name: str
    packages: tuple[str, ...]
    remove: tuple[str, ...] = ()  # paths that would make the rootfs differ from build to build


PYTHON_BASE: Final = Base("python", ("python3",))
# ca-certificates-java's keystore records when each certificate was imported: it differs at every
# build. The broker's PLAINTEXT listeners need no trust store; a TLS set-up names its own
# (ssl.truststore.location, or -Djavax.net.ssl.trustStore in KAFKA_OPTS).
JRE_BASE: Final = Base("jre", ("openjdk-17-jre-headless",), remove=("/etc/ssl/certs/java/cacerts",))
BASES: Final = (PYTHON_BASE, JRE_BASE)


def python_env() -> dict[str, str]:
    return {"PATH": PATH, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def product_configs(version: str) -> dict[str, ImageConfig]:
    """Reference -> config for the product image's three tags."""
    user = f"{APP_UID}:{APP_UID}"
    labels = {"org.opencontainers.image.version": version, "org.opencontainers.image.title": "flashsale"}
    flashsale = ("flashsale",)
    return {
        f"flashsale/operator:{version}": ImageConfig(
            user, ("python3", "-m", "flashsale_operator"), env=python_env(), labels=labels
        ),
        f"flashsale/gateway:{version}": ImageConfig(
            user, flashsale, ("gateway",), python_env(), labels=labels
        ),
        f"flashsale/consumer:{version}": ImageConfig(
            user, flashsale, ("consumer",), python_env(), labels=labels
        ),
    }


def kafka_config(version: str, kafka_version: str) -> dict[str, ImageConfig]:
    env = {"PATH": PATH, "KAFKA_HOME": "/opt/kafka", "KAFKA_VERSION": kafka_version}
    labels = {"org.opencontainers.image.version": version, "org.apache.kafka.version": kafka_version}
    user = f"{APP_UID}:{APP_UID}"
    return {
        f"flashsale/kafka:{version}": ImageConfig(
            user, ("/usr/local/bin/kafka-entrypoint",), env=env, working_dir="/var/lib/kafka", labels=labels
        )
    }


def pause_config(version: str) -> dict[str, ImageConfig]:
    user = f"{PAUSE_UID}:{PAUSE_UID}"
    return {
        f"flashsale/pause:{version}": ImageConfig(
            user, ("/pause",), labels={"org.opencontainers.image.version": version}
        )
    }
