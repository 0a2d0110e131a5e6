"""The local stack: a real Apache Kafka broker (KRaft, single node) and a real Redis server.

Both run as background processes on loopback, owned by s321:

* Kafka's jars (``org.apache.kafka:kafka_2.13`` and its runtime dependencies, plus
  ``kafka-tools`` for the consumer-group tool) are resolved by Maven from Maven Central into
  ``<cache_dir>/kafka-<version>/libs`` once; nothing is downloaded into the repository.
* The broker's storage is formatted once under ``<data_dir>/kafka/data`` and reused, so data
  survives ``down`` / ``up``.
* Redis is Debian's ``redis-server``, with its append-only file under ``<data_dir>/redis``.
* On request (``up(registry=True)``, ``s321 stack up --registry``), a schema registry with the
  Confluent-compatible API: Apicurio Registry's application distribution
  (``io.apicurio:apicurio-registry-app``, ``tar.gz`` classifier ``all``) resolved by Maven from
  Maven Central into ``<cache_dir>/apicurio-<version>`` once, run on the same Java runtime with
  in-memory storage (its schemas last as long as the process). Its Confluent-compatible base
  URL, the value for ``S321_SCHEMA_REGISTRY_URL``, is :attr:`RegistryService.url`.

``up`` is idempotent: a service whose port already answers is left alone (it may be one that
another ``up`` started, or one that somebody else runs on that port). ``down`` stops only the
processes whose pid files s321 wrote.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

from s321.errors import MissingToolError, StackError
from s321.kafka_config import KafkaClientConfig, confluent
from s321.settings import Secret, Settings

__all__ = [
    "REGISTRY_VERSION",
    "SECURE_ADMIN",
    "SECURE_WORKER",
    "KafkaService",
    "RedisService",
    "RegistryService",
    "SecureKafkaService",
    "ServiceStatus",
    "Stack",
    "StackConfig",
    "worker_acls",
]

_MAVEN_LOG4J = "2.24.3"
_JAVA_HINT = "Install a Java 17+ runtime: `apt-get install -y openjdk-17-jre-headless`."
#: Apicurio Registry release the local schema registry runs (its classes need Java 11+).
REGISTRY_VERSION = "2.6.13.Final"


@dataclass(frozen=True)
class StackConfig:
    """Where the stack lives and which ports it answers on."""

    data_dir: Path
    cache_dir: Path
    kafka_version: str
    kafka_port: int
    controller_port: int
    redis_port: int
    kafka_heap: str = "1g"
    timeout_s: float = 90.0
    registry_port: int = 18081
    redis_url: str = ""  # whose user and password the local Redis asks for, if it has them
    secure_port: int = 19094


@dataclass(frozen=True)
class ServiceStatus:
    """What ``s321 stack status`` reports for one service."""

    name: str
    address: str
    running: bool
    pid: int | None
    owned: bool
    detail: str

    def line(self) -> str:
        state = "up" if self.running else "down"
        who = f"pid {self.pid}" if self.owned and self.pid else "not started by s321"
        if not self.running:
            who = "-"
        return f"{self.name:<8} {state:<5} {self.address:<22} {who:<22} {self.detail}"


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# Servers this process started, so their exit status is collected (and not warned about).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _pid_alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _require(tool: str, hint: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise MissingToolError(tool, hint)
    return found


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Process:
    """A background server process with a pid file and a log file."""

    def __init__(self, name: str, home: Path) -> None:
        self.name = name
        self.home = home
        self.pid_file = home / f"{name}.pid"
        self.log_file = home / f"{name}.out"

    def pid(self) -> int | None:
        pid = _read_pid(self.pid_file)
        return pid if pid is not None and _pid_alive(pid) else None

    def spawn(self, argv: list[str], cwd: Path) -> int:
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _CHILDREN[proc.pid] = proc
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def wait_ready(self, ready: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            if self.pid() is None:
                raise StackError(
                    f"{self.name} exited during start-up; last lines of {self.log_file}:\n"
                    f"{_tail(self.log_file)}"
                )
            time.sleep(0.25)
        raise StackError(
            f"{self.name} did not become ready within {timeout_s:.0f}s; "
            f"last lines of {self.log_file}:\n{_tail(self.log_file)}"
        )

    def stop(self, timeout_s: float) -> bool:
        """SIGTERM, then SIGKILL after ``timeout_s``. False when nothing of ours was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _pid_alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                time.sleep(0.2)
                break
            time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL, no clean shutdown: for crash tests."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>s321.local</groupId><artifactId>kafka-runtime</artifactId><version>{v}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{v}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId>
      <version>{v}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {logs}/server.log
appender.file.filePattern = {logs}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


_OFFSETS_PARTITIONS = 10  # offsets.topic.num.partitions in the broker's configuration


def _group_partition(group: str) -> int:
    """The offsets-topic partition (so the coordinator) of a consumer group, as Kafka picks
    it: Java's String.hashCode, made non-negative, modulo the partition count."""
    h = 0
    for ch in group:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return (h & 0x7FFFFFFF) % _OFFSETS_PARTITIONS


def _coordinator_probes() -> list[str]:
    """One group name per offsets-topic partition."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < _OFFSETS_PARTITIONS:
        found.setdefault(_group_partition(f"s321-ready-{i}"), f"s321-ready-{i}")
        i += 1
    return [found[p] for p in sorted(found)]


_COORDINATOR_PROBES = _coordinator_probes()


def new_cluster_id() -> str:
    """A random KRaft cluster id: 16 random bytes, URL-safe base64 without padding.

    Like Kafka's own generator it never starts with "-", which command-line parsers read as an
    option (one id in 64 would otherwise make `format` fail).
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class _Service:
    """A local server s321 starts and stops, its files under ``<data dir>/<name>``.

    :meth:`start` leaves one that already answers alone (whoever started it); :meth:`stop`
    stops only a process this stack started."""

    name: ClassVar[str]
    stop_timeout_s: ClassVar[float]

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.home = cfg.data_dir / self.name
        self.proc = _Process(self.name, self.home)

    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ready(self) -> bool:
        raise NotImplementedError

    def _spawn(self) -> None:
        """Prepare the server's files and start its process."""
        raise NotImplementedError

    def _detail(self) -> str:
        raise NotImplementedError

    def start(self) -> bool:
        """Start the server unless one answers already. True when this call started it."""
        if self.proc.pid() is None and not port_open(self.port):
            self._spawn()
            started = True
        else:
            started = False
        self.proc.wait_ready(self.ready, self.cfg.timeout_s)
        return started

    def stop(self) -> bool:
        return self.proc.stop(timeout_s=self.stop_timeout_s)

    def status(self) -> ServiceStatus:
        pid = self.proc.pid()
        return ServiceStatus(
            self.name, self.address, port_open(self.port), pid, pid is not None, self._detail()
        )


class KafkaService(_Service):
    """A single-node KRaft broker+controller on loopback."""

    name = "kafka"
    stop_timeout_s = 60

    def __init__(self, cfg: StackConfig) -> None:
        super().__init__(cfg)
        self.libs = cfg.cache_dir / f"kafka-{cfg.kafka_version}" / "libs"

    @property
    def port(self) -> int:
        return self.cfg.kafka_port

    def classpath(self) -> str:
        """The Java class path of the broker and its tools (fetches the jars if needed)."""
        self.fetch()
        return str(self.libs / "*")

    def fetch(self) -> Path:
        """Resolve the broker's jars from Maven Central into the cache, once."""
        marker = self.libs / ".complete"
        if marker.exists():
            return self.libs
        mvn = _require(
            "mvn",
            "Kafka's jars are fetched with Maven: install it with `apt-get install -y maven` "
            "(./deploy/s321 does this for you).",
        )
        _require("java", _JAVA_HINT)
        work = self.libs.parent
        work.mkdir(parents=True, exist_ok=True)
        (work / "pom.xml").write_text(_POM.format(v=self.cfg.kafka_version, log4j=_MAVEN_LOG4J))
        staging = work / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(work / "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"Maven could not fetch Apache Kafka {self.cfg.kafka_version}:\n"
                f"{(result.stdout + result.stderr)[-3000:]}"
            )
        shutil.rmtree(self.libs, ignore_errors=True)
        staging.rename(self.libs)
        marker.write_text(self.cfg.kafka_version)
        return self.libs

    @property
    def controller_port(self) -> int:
        return self.cfg.controller_port

    def client(self) -> KafkaClientConfig:
        """How an administrator's client reaches this broker."""
        return KafkaClientConfig(self.address)

    def _listeners(self) -> dict[str, str]:
        """The broker's listener properties: one PLAINTEXT listener for clients."""
        c = self.cfg
        return {
            "listeners": f"PLAINTEXT://127.0.0.1:{c.kafka_port},"
            f"CONTROLLER://127.0.0.1:{c.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{c.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
        }

    def _write_config(self) -> Path:
        config = self.home / "config"
        logs = self.home / "logs"
        config.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            **self._listeners(),
            "log.dirs": str(self.home / "data"),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": str(_OFFSETS_PARTITIONS),
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
        }
        server = config / "server.properties"
        server.touch(mode=0o600)  # the secured broker's holds its own password
        server.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (config / "log4j2.properties").write_text(_LOG4J2.format(logs=logs))
        return server

    def _java(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        java = _require("java", _JAVA_HINT)
        return [
            java,
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'config' / 'log4j2.properties'}",
            "-cp",
            self.classpath(),
            main,
            *args,
        ]

    def _format_args(self) -> list[str]:
        """Further arguments of the storage tool's ``format``."""
        return []

    def _format(self, server: Path) -> None:
        if (self.home / "data" / "meta.properties").exists():
            return
        result = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={new_cluster_id()}",
                f"--config={server}",
                "--standalone",
                *self._format_args(),
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def ready(self) -> bool:
        """True when the broker answers a metadata request."""
        if not port_open(self.port):
            return False
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({**confluent(self.client()), "socket.timeout.ms": 2000})
        try:
            admin.list_topics(timeout=2)
            # a fresh broker answers metadata before its group coordinators have loaded; until
            # then a synchronous offset commit fails (COORDINATOR_LOAD_IN_PROGRESS): ask about
            # one group per offsets partition, each of which makes its coordinator load
            for fut in admin.describe_consumer_groups(_COORDINATOR_PROBES).values():
                fut.result(timeout=5)
        except Exception:
            return False
        return True

    def _spawn(self) -> None:
        server = self._write_config()
        self._format(server)
        self.proc.spawn(
            self._java("kafka.Kafka", str(server), heap=self.cfg.kafka_heap), cwd=self.home
        )

    def _detail(self) -> str:
        return f"Apache Kafka {self.cfg.kafka_version} (KRaft), data {self.home / 'data'}"

    def tool(self, main: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one of Kafka's own command-line tools (for example the consumer-group tool)."""
        return subprocess.run(
            self._java(main, *args),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )


#: The secured broker's own SCRAM user: the inter-broker principal and the super user.
SECURE_ADMIN = "admin"
#: The secured broker's user for s321's worker and tools (``s321 stack up --secure``).
SECURE_WORKER = "s321"


def worker_acls(principal: str, app_id: str, prefix: str, exactly_once: bool = False) -> list[Any]:
    """The ACL bindings a worker needs, and no more; deploy/SECURITY.md lists the same.

    ``principal`` is ``User:<name>``. Read and Write imply Describe in Kafka. Create lets a
    worker make a missing topic at start; where topics are made beforehand it can be left out,
    except on Faust's assignment topic, which Faust itself declares at every start.
    """
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    from s321 import topics

    read, write, create = AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE
    topic, literal = ResourceType.TOPIC, ResourcePatternType.LITERAL
    wanted: list[tuple[Any, str, Any, tuple[Any, ...]]] = [
        *((topic, topics.topic_name(s, prefix), literal, (read, create)) for s in topics.INPUTS),
        *(
            (topic, topics.topic_name(s, prefix), literal, (write, create))
            for s in (topics.DECISIONS, topics.DEAD_LETTERS, topics.UNMATCHED)
        ),
        (topic, topics.topic_name(topics.REPARTITION, prefix), literal, (read, write, create)),
        (topic, topics.changelog_name(app_id), literal, (read, write, create)),
        (topic, f"{app_id}-__assignor-__leader", literal, (read, create)),
        (ResourceType.GROUP, app_id, literal, (read,)),
    ]
    if exactly_once:  # Faust names its transactions <app id>-<group>-<partition>
        wanted.append(
            (ResourceType.TRANSACTIONAL_ID, f"{app_id}-", ResourcePatternType.PREFIXED, (write,))
        )
    return [
        AclBinding(kind, name, pattern, principal, "*", op, AclPermissionType.ALLOW)
        for kind, name, pattern, allowed in wanted
        for op in allowed
    ]


class SecureKafkaService(KafkaService):
    """A second single-node broker whose clients must use TLS: SASL_SSL (SCRAM-SHA-512 and
    SCRAM-SHA-256) on ``secure_port``, SSL with a required client certificate (mutual TLS) on
    ``secure_port + 1``, and the standard authorizer, so every client needs ACLs. Its KRaft
    controller listens on ``secure_port + 2`` (plaintext, loopback only: the broker's own
    connection, whose anonymous principal is therefore a super user besides ``admin``).

    At its first start it makes, under ``<data dir>/kafka-secure/tls``, a CA, a broker
    certificate for 127.0.0.1 and localhost, and a client certificate (CN ``s321-client``),
    all PEM; and the SCRAM users ``admin`` (super user) and ``s321``, whose passwords are
    written to ``<data dir>/kafka-secure/secrets/<user>.password`` (readable by the owner
    only), never printed. Its data directory is its own: the plaintext broker is untouched.
    """

    name = "kafka-secure"

    @property
    def port(self) -> int:
        return self.cfg.secure_port

    @property
    def mtls_address(self) -> str:
        return f"127.0.0.1:{self.cfg.secure_port + 1}"

    @property
    def controller_port(self) -> int:
        return self.cfg.secure_port + 2

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def client_cert(self) -> Path:
        return self.tls_dir / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.tls_dir / "client.key"

    def password(self, user: str) -> Secret:
        """The password of a user made by this stack, made (random) on first use."""
        path = self.home / "secrets" / f"{user}.password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600)
            path.write_text(uuid.uuid4().hex)
        return Secret(path.read_text().strip())

    def client(self, user: str = SECURE_ADMIN) -> KafkaClientConfig:
        """How ``user`` (a SCRAM user of this broker) connects over SASL_SSL."""
        return KafkaClientConfig(
            self.address,
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            username=user,
            password=self.password(user),
            ca_file=str(self.ca_file),
        )

    def mtls_client(self) -> KafkaClientConfig:
        """A client with the stack's client certificate on the mutual-TLS listener."""
        return KafkaClientConfig(
            self.mtls_address,
            security_protocol="SSL",
            ca_file=str(self.ca_file),
            cert_file=str(self.client_cert),
            key_file=str(self.client_key),
        )

    def _certificates(self) -> None:
        if (self.tls_dir / ".complete").exists():
            return
        openssl = _require("openssl", "Install it with `apt-get install -y openssl`.")
        d = self.tls_dir
        d.mkdir(parents=True, exist_ok=True, mode=0o700)

        def run(*args: str) -> None:
            result = subprocess.run(
                [openssl, *args], capture_output=True, text=True, check=False, cwd=d
            )
            if result.returncode != 0:
                raise StackError(f"openssl {args[0]} failed:\n{result.stderr[-2000:]}")

        run(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "365",
            "-subj",
            "/CN=s321 local CA",
        )
        for who, cn, san in (
            ("broker", "localhost", "IP:127.0.0.1,DNS:localhost"),
            ("client", "s321-client", ""),
        ):
            run(
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                f"{who}.key",
                "-out",
                f"{who}.csr",
                "-subj",
                f"/CN={cn}",
            )
            ext = d / f"{who}.ext"
            ext.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
            run(
                "x509",
                "-req",
                "-in",
                f"{who}.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                f"{who}.crt",
                "-days",
                "365",
                "-extfile",
                ext.name,
            )
        # the broker's PEM key store: its key, then its certificate
        (d / "broker-keystore.pem").write_text(
            (d / "broker.key").read_text() + (d / "broker.crt").read_text()
        )
        (d / "client.pem").write_text((d / "client.crt").read_text())
        (d / ".complete").touch()

    def _listeners(self) -> dict[str, str]:
        port, tls = self.cfg.secure_port, self.tls_dir
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{SECURE_ADMIN}" password="{self.password(SECURE_ADMIN).get()}";'
        )
        return {
            "listeners": f"SASL_SSL://127.0.0.1:{port},SSL://127.0.0.1:{port + 1},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{port},SSL://127.0.0.1:{port + 1}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "SASL_SSL",
            "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": jaas,
            "listener.name.ssl.ssl.client.auth": "required",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(tls / "broker-keystore.pem"),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls / "ca.pem"),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{SECURE_ADMIN};User:ANONYMOUS",
        }

    def _format_args(self) -> list[str]:
        return [
            f"--add-scram=SCRAM-SHA-512=[name={user},password={self.password(user).get()}]"
            for user in (SECURE_ADMIN, SECURE_WORKER)
        ]

    def _spawn(self) -> None:
        self._certificates()
        super()._spawn()

    def _detail(self) -> str:
        return (
            f"Apache Kafka {self.cfg.kafka_version}, SASL_SSL (SCRAM) here, mutual TLS on "
            f"{self.mtls_address}, ACLs enforced; CA {self.ca_file}"
        )

    def add_user(self, user: str, password: str, mechanism: str = "SCRAM-SHA-512") -> None:
        """Create or change a SCRAM user (as ``admin``)."""
        from confluent_kafka.admin import (  # type: ignore[attr-defined]
            AdminClient,
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        kind = (
            ScramMechanism.SCRAM_SHA_512
            if mechanism == "SCRAM-SHA-512"
            else ScramMechanism.SCRAM_SHA_256
        )
        admin = AdminClient(confluent(self.client()))
        upsert = UserScramCredentialUpsertion(
            user, ScramCredentialInfo(kind, 8192), password.encode()
        )
        for fut in admin.alter_user_scram_credentials([upsert]).values():
            fut.result(timeout=30)

    def grant(self, bindings: list[Any]) -> None:
        """Create ACL bindings (as ``admin``)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(confluent(self.client()))
        for fut in admin.create_acls(bindings).values():
            fut.result(timeout=30)


class RedisService(_Service):
    """Debian's redis-server on loopback, append-only persistence under the data dir."""

    name = "redis"
    stop_timeout_s = 20

    @property
    def port(self) -> int:
        return self.cfg.redis_port

    def _credentials(self) -> tuple[str, str]:
        """The user name and password of the configured Redis URL (empty when it has none)."""
        parts = urlsplit(self.cfg.redis_url)
        return unquote(parts.username or ""), unquote(parts.password or "")

    def ready(self) -> bool:
        """The local Redis answers PING, asked with the configured URL's credentials. Raises
        :class:`StackError` when it refuses them (it was started by someone else, or with
        other credentials): waiting would not change that."""
        if not port_open(self.cfg.redis_port):
            return False
        import redis

        from s321.stores.connection import redis_client

        user, password = self._credentials()
        auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if password else ""
        client = redis_client(f"redis://{auth}127.0.0.1:{self.cfg.redis_port}/0", timeout_s=1.0)
        try:
            return bool(client.ping())
        except redis.AuthenticationError:
            raise StackError(
                f"the Redis on port {self.cfg.redis_port} refused the user and password of "
                "S321_REDIS_URL"
            ) from None
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _auth_config(self) -> list[str]:
        """A config file (readable by its owner only, so the password is in no command line)
        making the local Redis ask for the configured URL's credentials; none without them."""
        user, password = self._credentials()
        if not password:
            return []

        def quoted(value: str) -> str:
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

        if user and user != "default":
            lines = [
                f"user {quoted(user)} on {quoted('>' + password)} ~* &* +@all",
                "user default off",
            ]
        else:
            lines = [f"requirepass {quoted(password)}"]
        conf = self.home / "auth.conf"
        conf.touch(mode=0o600)
        conf.chmod(0o600)
        conf.write_text("\n".join(lines) + "\n")
        return [str(conf)]

    def _spawn(self) -> None:
        server = _require(
            "redis-server",
            "Install Debian's package: `apt-get update && apt-get install -y redis-server` "
            "(./deploy/s321 does this for you).",
        )
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        self.proc.spawn(
            [
                server,
                *self._auth_config(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.cfg.redis_port),
                "--dir",
                str(self.home / "data"),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            cwd=self.home,
        )

    def _detail(self) -> str:
        return f"redis-server, data {self.home / 'data'}"


class RegistryService:
    """A Confluent-compatible schema registry on loopback (Apicurio Registry, in-memory)."""

    name = "registry"
    #: where Apicurio serves the Confluent-compatible API
    API_PATH = "/apis/ccompat/v6"

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.home = cfg.data_dir / "registry"
        self.dist = cfg.cache_dir / f"apicurio-{REGISTRY_VERSION}"
        self.proc = _Process("registry", self.home)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.cfg.registry_port}"

    @property
    def url(self) -> str:
        """The base URL a Confluent schema-registry client is given."""
        return f"http://{self.address}{self.API_PATH}"

    def fetch(self) -> Path:
        """Resolve the registry's distribution from Maven Central into the cache, once."""
        marker = self.dist / ".complete"
        if marker.exists():
            return self.dist
        mvn = _require(
            "mvn", "The schema registry is fetched with Maven: `apt-get install -y maven`."
        )
        staging = self.dist.with_name(self.dist.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        coordinates = f"io.apicurio:apicurio-registry-app:{REGISTRY_VERSION}:tar.gz:all"
        result = subprocess.run(
            [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={coordinates}",
             f"-DoutputDirectory={staging}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise StackError(
                f"Maven could not fetch {coordinates}:\n{(result.stdout + result.stderr)[-3000:]}"
            )
        import tarfile

        archive = staging / f"apicurio-registry-app-{REGISTRY_VERSION}-all.tar.gz"
        with tarfile.open(archive) as tar:
            tar.extractall(staging / "dist", filter="data")
        archive.unlink()
        shutil.rmtree(self.dist, ignore_errors=True)
        staging.rename(self.dist)
        marker.write_text(REGISTRY_VERSION)
        return self.dist

    def ready(self) -> bool:
        """True when the Confluent-compatible API lists subjects."""
        if not port_open(self.cfg.registry_port):
            return False
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.url}/subjects", timeout=2) as reply:  # noqa: S310  # http on loopback
                return bool(reply.status == 200)
        except OSError:
            return False

    def start(self) -> bool:
        """Start the registry unless one answers already. True when this call started it."""
        if self.proc.pid() is not None or port_open(self.cfg.registry_port):
            self.proc.wait_ready(self.ready, self.cfg.timeout_s)
            return False
        java = _require("java", _JAVA_HINT)
        dist = self.fetch() / "dist"
        (self.home / "tmp").mkdir(parents=True, exist_ok=True)
        props = {
            "quarkus.http.host": "127.0.0.1",
            "quarkus.http.port": str(self.cfg.registry_port),
            "quarkus.datasource.jdbc.url": "jdbc:h2:mem:registry",
            "quarkus.datasource.jdbc.initial-size": "2",
            "quarkus.datasource.jdbc.min-size": "2",
            "quarkus.datasource.jdbc.max-size": "10",
            "java.io.tmpdir": str(self.home / "tmp"),
        }
        jar = f"apicurio-registry-app-{REGISTRY_VERSION}-runner.jar"
        argv = [java, "-Xmx384m", *(f"-D{k}={v}" for k, v in props.items()), "-jar", jar]
        self.proc.spawn(argv, cwd=dist)
        self.proc.wait_ready(self.ready, self.cfg.timeout_s)
        return True

    def stop(self) -> bool:
        return self.proc.stop(timeout_s=20)

    def status(self) -> ServiceStatus:
        pid = self.proc.pid()
        return ServiceStatus(
            self.name,
            self.address,
            port_open(self.cfg.registry_port),
            pid,
            pid is not None,
            f"Apicurio Registry {REGISTRY_VERSION}, in memory; {self.url}",
        )


class Stack:
    """The local Kafka and Redis (and, on request, the schema registry), started and stopped
    together."""

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.kafka = KafkaService(cfg)
        self.redis = RedisService(cfg)
        self.registry = RegistryService(cfg)
        self.secure = SecureKafkaService(cfg)

    @classmethod
    def from_settings(cls, settings: Settings) -> Stack:
        return cls(
            StackConfig(
                data_dir=settings.data_dir / "stack",
                cache_dir=settings.cache_dir,
                kafka_version=settings.kafka_version,
                kafka_port=settings.kafka_port,
                controller_port=settings.kafka_controller_port,
                redis_port=settings.redis_port,
                registry_port=settings.registry_port,
                secure_port=settings.kafka_secure_port,
                kafka_heap=settings.kafka_heap,
                timeout_s=settings.stack_timeout_s,
                redis_url=settings.redis_url,
            )
        )

    def up(self, registry: bool = False, secure: bool = False) -> list[str]:
        """Start what is not running (the schema registry too with ``registry``, the secured
        broker with ``secure``). Returns the names of the services this call started."""
        started = []
        services: tuple[RedisService | KafkaService | RegistryService, ...] = (
            self.redis, self.kafka, *((self.registry,) if registry else ()),
            *((self.secure,) if secure else ()),
        )  # fmt: skip
        for service in services:
            if service.start():
                started.append(service.name)
        return started

    def down(self, only: list[str] | None = None) -> list[str]:
        """Stop the services s321 started (all, or those named). Returns what it stopped."""
        stopped = []
        for service in (self.registry, self.secure, self.kafka, self.redis):
            if (only is None or service.name in only) and service.stop():
                stopped.append(service.name)
        return stopped

    def pids(self) -> dict[str, int]:
        """The pids of the broker (``kafka``) and Redis (``redis``) where this stack started
        them and they run (one started by someone else has no pid here)."""
        found = {"kafka": self.kafka.proc.pid(), "redis": self.redis.proc.pid()}
        return {name: pid for name, pid in found.items() if pid is not None}

    def status(self) -> list[ServiceStatus]:
        return [
            self.kafka.status(),
            self.redis.status(),
            self.registry.status(),
            self.secure.status(),
        ]

    @contextmanager
    def running(self) -> Iterator[list[str]]:
        """Bring the stack up for a block; stop on exit only what this block started."""
        started = self.up()
        try:
            yield started
        finally:
            self.down(only=started)
