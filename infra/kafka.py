"""A real Apache Kafka on 127.0.0.1: one node, or a cluster of `kafka_brokers` nodes, each a
KRaft combined broker+controller and every one a voter of the controller quorum.

The jars come from Maven Central through `infra/pom.xml`, copied once into the cache
directory and reused. Storage is formatted once, every node of a cluster with the same
cluster id; the nodes run detached, each tracked by a pid file under the state directory,
so `rapport infra down` in another process can stop them. A single broker lives in
STATE_DIR/kafka, a cluster of N in STATE_DIR/kafka-cluster-N/node-I: each keeps its data
when the other is brought up instead.
"""

from __future__ import annotations

import base64
import re
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from infra.errors import InfraError, ServiceUnreachable
from infra.processes import read_pid, spawn, terminate_all, wait_until
from infra.settings import Settings

KAFKA_VERSION = "4.1.2"
KAFKA_ARTIFACT = f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}"
START_TIMEOUT_S = 90.0
_CLUSTER_DIR = re.compile(r"kafka-cluster-(\d+)")


@dataclass(frozen=True)
class KafkaNode:
    """One node of the local cluster (broker and controller): its ports and its directory."""

    node_id: int
    port: int
    controller_port: int
    home: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "server.out"


@dataclass(frozen=True)
class KafkaStatus:
    name: str
    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path


def cluster_home(state_dir: Path, brokers: int) -> Path:
    return state_dir / "kafka" if brokers == 1 else state_dir / f"kafka-cluster-{brokers}"


class LocalKafka:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.brokers = settings.kafka_brokers
        self.home = cluster_home(settings.state_dir, self.brokers)
        self.nodes = [
            KafkaNode(
                k + 1,
                port,
                controller,
                self.home if self.brokers == 1 else self.home / f"node-{k + 1}",
            )
            for k, (port, controller) in enumerate(settings.local_kafka_ports)
        ]
        self.lib_dir = settings.cache_dir / f"kafka-{KAFKA_VERSION}" / "lib"

    @property
    def name(self) -> str:
        return "kafka" if self.brokers == 1 else f"kafka ({self.brokers} brokers)"

    @classmethod
    def on_disk(cls, settings: Settings) -> list[LocalKafka]:
        """The configured cluster and every other one with a directory under the state dir,
        so `infra down` and `infra status` find a cluster whatever RAPPORT_KAFKA_BROKERS says
        now (`infra up --brokers 3`, then `infra down`)."""
        sizes = {settings.kafka_brokers}
        if (settings.state_dir / "kafka").is_dir():
            sizes.add(1)
        for path in settings.state_dir.glob("kafka-cluster-*"):
            if match := _CLUSTER_DIR.fullmatch(path.name):
                sizes.add(int(match[1]))
        return [cls(settings.model_copy(update={"kafka_brokers": n})) for n in sorted(sizes)]

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

    def _write_config(self, node: KafkaNode) -> Path:
        s = self.settings
        replicas, min_isr = s.topic_replication, s.min_insync_replicas
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        node.home.mkdir(parents=True, exist_ok=True)
        properties = node.home / "server.properties"
        properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={node.node_id}",
                    f"controller.quorum.voters={voters}",
                    f"listeners=PLAINTEXT://127.0.0.1:{node.port},"
                    f"CONTROLLER://127.0.0.1:{node.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{node.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={node.data_dir}",
                    f"num.partitions={s.topic_partitions}",
                    # Topics made without these settings (by a third party) are replicated as
                    # Rapport's own are (infra/services.py new_topic), internal ones too.
                    f"default.replication.factor={replicas}",
                    f"min.insync.replicas={min_isr}",
                    f"offsets.topic.replication.factor={replicas}",
                    "offsets.topic.num.partitions=6",
                    f"transaction.state.log.replication.factor={replicas}",
                    f"transaction.state.log.min.isr={min_isr}",
                    f"share.coordinator.state.topic.replication.factor={replicas}",
                    f"share.coordinator.state.topic.min.isr={min_isr}",
                    "group.initial.rebalance.delay.ms=0",
                    # The touchpoint log is the record: nothing expires by default.
                    "log.retention.hours=-1",
                    "log.retention.bytes=-1",
                    "auto.create.topics.enable=false",
                    "",
                ]
            )
        )
        (node.home / "log4j2.properties").write_text(
            "\n".join(
                [
                    "status = warn",
                    "appender.file.type = RollingFile",
                    "appender.file.name = file",
                    f"appender.file.fileName = {node.home / 'server.log'}",
                    f"appender.file.filePattern = {node.home / 'server.log.%i'}",
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

    def _java_argv(self, node: KafkaNode, main: str, *args: str) -> list[str]:
        return [
            self._java(),
            f"-Xmx{self.settings.kafka_heap}",
            f"-Xms{self.settings.kafka_heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={node.home / 'log4j2.properties'}",
            "-cp",
            f"{self.lib_dir}/*",
            main,
            *args,
        ]

    def _format_storage(self, properties: dict[KafkaNode, Path]) -> None:
        """Format the nodes not formatted yet, all with the cluster's id (a new cluster's new
        one), in parallel: each format is a JVM start."""
        unformatted = {
            node: path
            for node, path in properties.items()
            if not (node.data_dir / "meta.properties").exists()
        }
        if not unformatted:
            return
        cluster_id = self._cluster_id() or (
            base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        )
        formats = {
            node: subprocess.Popen(
                self._java_argv(
                    node,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(path),
                    "--ignore-formatted",
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for node, path in unformatted.items()
        }
        failures = []
        for node, process in formats.items():
            output, _ = process.communicate()
            if process.returncode != 0:
                failures.append(f"{node.data_dir}:\n{output.strip()[-2000:]}")
        if failures:
            raise InfraError("kafka.tools.StorageTool format failed for " + "\n".join(failures))

    def _cluster_id(self) -> str | None:
        """The id a formatted node of this cluster holds, if any (a node whose data was
        removed is formatted again into the same cluster)."""
        for node in self.nodes:
            meta = node.data_dir / "meta.properties"
            if meta.exists():
                for line in meta.read_text().splitlines():
                    key, _, value = line.partition("=")
                    if key.strip() == "cluster.id":
                        return value.strip()
        return None

    # -- lifecycle ----------------------------------------------------------------------
    def status(self) -> list[KafkaStatus]:
        return [
            KafkaStatus(
                self.name if self.brokers == 1 else f"kafka-{node.node_id}",
                (pid := read_pid(node.pid_file)) is not None,
                pid,
                node.bootstrap,
                node.data_dir,
            )
            for node in self.nodes
        ]

    def running(self) -> bool:
        return any(read_pid(node.pid_file) is not None for node in self.nodes)

    def start(self) -> bool:
        """Start the nodes that do not run; True when this call started any."""
        stopped = [node for node in self.nodes if read_pid(node.pid_file) is None]
        if not stopped:
            return False
        for node in stopped:
            for port in (node.port, node.controller_port):
                if port_in_use(port):
                    raise InfraError(self._port_taken(port))
        self.ensure_jars()
        self._format_storage({node: self._write_config(node) for node in stopped})
        # A node answers only once a majority of the quorum runs: start every one first.
        pids = {
            node: spawn(
                self._java_argv(node, "kafka.Kafka", str(node.home / "server.properties")),
                pid_file=node.pid_file,
                log_file=node.log_file,
                cwd=node.home,
            )
            for node in stopped
        }
        timeout = START_TIMEOUT_S + 30.0 * (len(stopped) - 1)  # JVMs starting on shared cores
        ready = wait_until(
            self._ready,
            timeout=timeout,
            interval=0.25 if self.brokers == 1 else 0.5,
            alive=lambda: all(read_pid(node.pid_file) == pid for node, pid in pids.items()),
        )
        if not ready:
            terminate_all(pids.values(), timeout=60)
            for node in stopped:
                node.pid_file.unlink(missing_ok=True)
            logs = ", ".join(str(node.home / "server.log") for node in stopped)
            raise InfraError(
                f"Kafka did not become ready on {self.settings.bootstrap} within "
                f"{timeout:.0f}s; see {logs} (and server.out beside each)"
            )
        return True

    def _ready(self) -> bool:
        """Every node answers, and the cluster has every broker registered (a topic with
        three replicas can be made)."""
        if not all(broker_answers(node.bootstrap, timeout_s=2.0) for node in self.nodes):
            return False
        return self.brokers == 1 or registered_brokers(self.settings.bootstrap) >= self.brokers

    def _port_taken(self, port: int) -> str:
        others = [c for c in LocalKafka.on_disk(self.settings) if c.brokers != self.brokers]
        running = [c.brokers for c in others if c.running()]
        hint = (
            f"; the local {running[0]}-broker Kafka runs there: set RAPPORT_KAFKA_BROKERS="
            f"{running[0]} to use it, or stop it with `rapport infra down`"
            if running
            else ""
        )
        return (
            f"port {port} is taken by another process; set RAPPORT_KAFKA_PORT and "
            "RAPPORT_KAFKA_CONTROLLER_PORT to free ports "
            f"(or RAPPORT_KAFKA_BOOTSTRAP to use that broker){hint}"
        )

    def stop(self) -> bool:
        """Stop every node, all at once; True when any was running."""
        running = {node: pid for node in self.nodes if (pid := read_pid(node.pid_file))}
        terminate_all(running.values(), timeout=60)
        for node in running:
            node.pid_file.unlink(missing_ok=True)
        return bool(running)


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


def registered_brokers(bootstrap: str) -> int:
    """How many brokers the cluster has registered and not fenced (0 when it does not say)."""
    from kafka.errors import KafkaError

    from streams import kafka_clients

    try:
        admin = kafka_clients.admin(bootstrap, request_timeout_ms=5000)
    except (KafkaError, ValueError, OSError):
        return 0
    try:
        brokers = admin.describe_cluster()["brokers"]
        return sum(not broker.get("is_fenced", False) for broker in brokers)
    except (KafkaError, OSError):
        return 0
    finally:
        admin.close()


def require_broker(bootstrap: str, *, local: bool, timeout_s: float = 10.0) -> None:
    """Raise one clear line when the broker cannot be reached."""
    deadline = time.monotonic() + timeout_s
    while not broker_answers(bootstrap, timeout_s=2.0):
        if time.monotonic() > deadline:
            remedy = "run `rapport infra up`" if local else "check RAPPORT_KAFKA_BOOTSTRAP"
            raise ServiceUnreachable(f"cannot reach Kafka at {bootstrap}: {remedy}")
