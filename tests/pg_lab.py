"""Throwaway real PostgreSQL servers for the `postgres` backup kind's tests (Debian's binaries:
initdb, pg_ctl, postgres; psql and pg_dumpall as clients), on a unix socket only."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "dba"
PG_BIN = ("initdb", "pg_ctl", "postgres")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner() -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


@dataclass
class PgServer:
    base: Path
    port: int

    @property
    def data(self) -> Path:
        return self.base / "data"

    def env(self, user: str = SUPERUSER) -> dict[str, str]:
        """What the CNPG container's environment gives its pg_dumpall: where the server is."""
        return {"PGHOST": str(self.base), "PGPORT": str(self.port), "PGUSER": user}

    def psql(self, sql: str, db: str = "postgres", *, check: bool = True) -> str:
        proc = subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
            env={**os.environ, **self.env()},
            capture_output=True,
            text=True,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"psql failed: {proc.stderr}")
        return proc.stdout

    def stop(self) -> None:
        subprocess.run(
            [*_as_owner(), "pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )


def start_server() -> PgServer:
    missing = [b for b in (*PG_BIN, "psql", "pg_dumpall") if not shutil.which(b)]
    if missing or (os.geteuid() == 0 and not shutil.which("setpriv")):
        pytest.skip(f"PostgreSQL binaries missing: {', '.join(missing) or 'setpriv'}")
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server")
    base = Path(tempfile.mkdtemp(prefix="domum-pg-"))
    base.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(base, pw.pw_uid, pw.pw_gid)
    server = PgServer(base, _free_port())
    owner = _as_owner()
    subprocess.run(
        [*owner, "initdb", "-D", str(server.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"],
        capture_output=True,
        check=True,
    )
    opts = f"-c listen_addresses='' -c unix_socket_directories={base} -p {server.port}"
    subprocess.run(
        [
            *owner,
            "pg_ctl",
            "-D",
            str(server.data),
            "-o",
            opts,
            "-w",
            "-l",
            str(base / "log"),
            "start",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return server


@pytest.fixture
def pg_pair() -> Iterator[tuple[PgServer, PgServer]]:
    """The source cluster (the CNPG primary's stand-in) and an empty one to restore into."""
    servers = [start_server(), start_server()]
    try:
        yield servers[0], servers[1]
    finally:
        for s in servers:
            s.stop()
            shutil.rmtree(s.base, ignore_errors=True)
