"""Apache Kafka 4.x in KRaft mode (one combined broker+controller), from Maven Central jars.

The log directory lives in the component's directory, so a broker that is killed and started again
keeps its topics and committed consumer offsets, exactly like a restarted production broker.
"""

from __future__ import annotations

import base64
import logging
import socket
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from flashsale_dev.components.base import Component
from flashsale_dev.paths import kafka_libs, require_binary
from flashsale_dev.ports import PortReservations
from flashsale_dev.process import ComponentError, ManagedProcess

LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.coordinator.name = org.apache.kafka.coordinator
logger.coordinator.level = WARN
"""

# Small, single-node settings: replication 1, and one partition for the internal topics (the
# default 50 makes the first consumer-group join take seconds).
SINGLE_NODE = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "inter.broker.listener.name": "PLAINTEXT",
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "min.insync.replicas": "1",
    "default.replication.factor": "1",
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "false",
    "num.partitions": "1",
}
JVM_OPTIONS = [
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
]


class Kafka(Component):
    name = "kafka"
    ready_timeout = 120.0

    def __init__(self, root: Path, ports: PortReservations) -> None:
        super().__init__(root, ports)
        self.controller_port = ports.take()
        self.cluster_id = _cluster_id()

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def exports(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}

    def admin(self) -> AdminClient:
        settings: dict[str, object] = {"bootstrap.servers": self.bootstrap_servers, "logger": _quiet_logger()}
        return AdminClient(settings)  # type: ignore[arg-type]

    def create_topic(self, name: str, partitions: int = 1, timeout: float = 30.0) -> None:
        admin = self.admin()  # must outlive the future: a collected client cancels its requests
        admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=timeout)[name].result(timeout)

    def delete_topic(self, name: str, timeout: float = 30.0) -> None:
        admin = self.admin()
        admin.delete_topics([name], operation_timeout=timeout)[name].result(timeout)

    @property
    def _properties_path(self) -> Path:
        return self.dir / "server.properties"

    def _classpath(self) -> str:
        libs = kafka_libs()
        if not libs.is_dir():
            raise FileNotFoundError(f"Kafka jars missing at {libs}: run `make setup`")
        return f"{libs}/*"

    def _java(self) -> list[str]:
        return [
            str(require_binary("java", "install a Java 17 runtime")),
            *JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            "-cp",
            self._classpath(),
        ]

    def _prepare(self) -> None:
        settings = {
            **SINGLE_NODE,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "log.dirs": str(self.dir / "data"),
        }
        self._properties_path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        (self.dir / "log4j2.properties").write_text(LOG4J2)
        fmt = [
            *self._java(),
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            self.cluster_id,
            "-c",
            str(self._properties_path),
            "--ignore-formatted",
        ]
        done = subprocess.run(fmt, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise ComponentError(f"kafka storage format failed:\n{done.stdout}\n{done.stderr}")

    def _make_process(self) -> ManagedProcess:
        argv = [*self._java(), "kafka.Kafka", str(self._properties_path)]
        return ManagedProcess(self.name, argv, self.log_path)

    def _ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            pass
        metadata = self.admin().list_topics(timeout=5)
        return bool(metadata.brokers)


def _cluster_id() -> str:
    """A KRaft cluster id (22 chars of URL-safe base64). One starting with "-" would be read by the
    storage tool's argument parser as an option ("--cluster-id: expected one argument"): draw again."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def _quiet_logger() -> logging.Logger:
    """librdkafka prints every refused connection while a broker starts; keep that out of stderr."""
    logger = logging.getLogger("flashsale_dev.kafka.client")
    logger.setLevel(logging.CRITICAL)
    return logger
