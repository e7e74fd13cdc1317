"""A real single-node Apache Kafka broker (KRaft, combined broker+controller) on 127.0.0.1.

The jars come from Maven Central through `infra/pom.xml`, copied once into the cache
directory and reused. Storage is formatted once; the broker runs detached, tracked by a pid
file under the state directory, so `rapport infra down` in another process can stop it.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from infra.errors import InfraError, ServiceUnreachable
from infra.processes import read_pid, spawn, terminate, wait_until
from infra.settings import Settings

KAFKA_VERSION = "4.1.2"
KAFKA_ARTIFACT = f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}"
START_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class KafkaStatus:
    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path


class LocalKafka:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "kafka"
        self.data_dir = self.home / "data"
        self.pid_file = self.home / "kafka.pid"
        self.log_file = self.home / "server.out"
        self.lib_dir = settings.cache_dir / f"kafka-{KAFKA_VERSION}" / "lib"

    # -- provisioning -------------------------------------------------------------------
    def ensure_jars(self) -> Path:
        """Copy the broker's jars from Maven Central into the cache, once."""
        marker = self.lib_dir / ".complete"
        if marker.exists():
            return self.lib_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise InfraError(
                f"Maven (mvn) not found on PATH: it fetches {KAFKA_ARTIFACT} from Maven Central. "
                "Install it (apt-get install maven)."
            )
        pom = resources.files("infra").joinpath("pom.xml")
        with resources.as_file(pom) as pom_path:
            staging = self.lib_dir.with_name("lib.partial")
            shutil.rmtree(staging, ignore_errors=True)
            result = subprocess.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(pom_path),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={staging}",
                    "-DincludeScope=runtime",
                    f"-Dkafka.version={KAFKA_VERSION}",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise InfraError(f"Maven could not fetch {KAFKA_ARTIFACT} and its jars:\n{tail}")
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        staging.rename(self.lib_dir)
        marker.write_text(KAFKA_ARTIFACT + "\n")
        return self.lib_dir

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise InfraError("Java not found on PATH: the Kafka broker needs Java 17 or newer.")
        return java

    def _write_config(self) -> Path:
        s = self.settings
        self.home.mkdir(parents=True, exist_ok=True)
        properties = self.home / "server.properties"
        properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},"
                    f"CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.data_dir}",
                    f"num.partitions={s.topic_partitions}",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=6",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    # The touchpoint log is the record: nothing expires by default.
                    "log.retention.hours=-1",
                    "log.retention.bytes=-1",
                    "auto.create.topics.enable=false",
                    "",
                ]
            )
        )
        (self.home / "log4j2.properties").write_text(
            "\n".join(
                [
                    "status = warn",
                    "appender.file.type = RollingFile",
                    "appender.file.name = file",
                    f"appender.file.fileName = {self.home / 'server.log'}",
                    f"appender.file.filePattern = {self.home / 'server.log.%i'}",
                    "appender.file.layout.type = PatternLayout",
                    "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                    "appender.file.policies.type = Policies",
                    "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
                    "appender.file.policies.size.size = 20MB",
                    "appender.file.strategy.type = DefaultRolloverStrategy",
                    "appender.file.strategy.max = 3",
                    "rootLogger.level = INFO",
                    "rootLogger.appenderRef.file.ref = file",
                    "logger.kafka.name = kafka",
                    "logger.kafka.level = WARN",
                    "logger.org.name = org.apache.kafka",
                    "logger.org.level = WARN",
                    "",
                ]
            )
        )
        return properties

    def _java_argv(self, main: str, *args: str) -> list[str]:
        return [
            self._java(),
            f"-Xmx{self.settings.kafka_heap}",
            f"-Xms{self.settings.kafka_heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            f"{self.lib_dir}/*",
            main,
            *args,
        ]

    def _format_storage(self, properties: Path) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            self._java_argv(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(properties),
                "--ignore-formatted",
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise InfraError(
                f"kafka.tools.StorageTool format failed for {self.data_dir}:\n"
                f"{(result.stdout + result.stderr).strip()[-2000:]}"
            )

    # -- lifecycle ----------------------------------------------------------------------
    def status(self) -> KafkaStatus:
        pid = read_pid(self.pid_file)
        return KafkaStatus(pid is not None, pid, self.settings.bootstrap, self.data_dir)

    def start(self) -> bool:
        """Start the broker unless it already runs; True when this call started it."""
        if read_pid(self.pid_file) is not None:
            return False
        if port_in_use(self.settings.kafka_port):
            raise InfraError(
                f"port {self.settings.kafka_port} is taken by another process; "
                "set RAPPORT_KAFKA_PORT to a free port "
                "(or RAPPORT_KAFKA_BOOTSTRAP to use that broker)"
            )
        self.ensure_jars()
        properties = self._write_config()
        self._format_storage(properties)
        pid = spawn(
            self._java_argv("kafka.Kafka", str(properties)),
            pid_file=self.pid_file,
            log_file=self.log_file,
            cwd=self.home,
        )
        ready = wait_until(
            lambda: broker_answers(self.settings.bootstrap, timeout_s=2.0),
            timeout=START_TIMEOUT_S,
            interval=0.25,
            alive=lambda: read_pid(self.pid_file) == pid,
        )
        if not ready:
            self.stop()
            raise InfraError(
                f"Kafka did not become ready on {self.settings.bootstrap} within "
                f"{START_TIMEOUT_S:.0f}s; see {self.log_file} and {self.home / 'server.log'}"
            )
        return True

    def stop(self) -> bool:
        pid = read_pid(self.pid_file)
        if pid is None:
            return False
        terminate(pid, timeout=60)
        self.pid_file.unlink(missing_ok=True)
        return True


def port_in_use(port: int) -> bool:
    return _accepts_connections(f"127.0.0.1:{port}", 0.5)


def _accepts_connections(bootstrap: str, timeout_s: float) -> bool:
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


def broker_answers(bootstrap: str, *, timeout_s: float = 5.0) -> bool:
    """True when the broker answers a metadata request."""
    from kafka.errors import KafkaError

    from streams import kafka_clients

    if not _accepts_connections(bootstrap, timeout_s):
        return False  # fail fast: kafka-python would retry until its own timeouts
    try:
        consumer = kafka_clients.consumer(
            bootstrap,
            request_timeout_ms=int(timeout_s * 1000) + 1000,
            connections_max_idle_ms=int(timeout_s * 1000) + 2000,
        )
    except (KafkaError, ValueError, OSError):
        return False
    try:
        consumer.topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        consumer.close()


def require_broker(bootstrap: str, *, local: bool, timeout_s: float = 10.0) -> None:
    """Raise one clear line when the broker cannot be reached."""
    deadline = time.monotonic() + timeout_s
    while not broker_answers(bootstrap, timeout_s=2.0):
        if time.monotonic() > deadline:
            remedy = "run `rapport infra up`" if local else "check RAPPORT_KAFKA_BOOTSTRAP"
            raise ServiceUnreachable(f"cannot reach Kafka at {bootstrap}: {remedy}")
