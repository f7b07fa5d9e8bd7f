"""The restore drill of a `postgres` job: its pg_dumpall script loaded into a throw-away real
PostgreSQL, then every database, table and row count the script holds checked in it.

The server is the local PostgreSQL's own binaries (initdb, pg_ctl, psql): a data directory and
its unix socket in a temp dir, `listen_addresses=''` (no TCP at all), trust for the one
superuser it makes, fsync off (it is thrown away), stopped and deleted at the end whatever
happened. initdb and postgres refuse to run as root: as root they run as the `postgres` user.
Without local binaries the drill checks the script's structure only and says it was partial.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import VerifyError
from ...run import run_cmd
from .pg_dumpfile import DumpShape, shape

PROGRAMS = ("initdb", "pg_ctl", "psql")
# Debian keeps initdb and pg_ctl out of PATH (postgresql-common wraps them): look there too.
DEBIAN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "domum_drill"  # not a role a dump makes: the dump's own CREATE ROLEs all succeed
PORT = "5432"  # only names the socket file in our own directory


@dataclass
class DrillOutcome:
    message: str
    partial: bool


def find_programs() -> dict[str, str] | str:
    """{program: path}, or why the local PostgreSQL cannot be used."""
    dirs = [None, *sorted(Path("/").glob(DEBIAN_GLOB.lstrip("/")), reverse=True)]
    for d in dirs:
        found = {p: shutil.which(p, path=str(d) if d else None) for p in PROGRAMS}
        if all(found.values()):
            return {p: str(v) for p, v in found.items()}
    return f"no local PostgreSQL ({', '.join(PROGRAMS)} on PATH or in {DEBIAN_GLOB})"


def _owner() -> tuple[list[str], tuple[int, int] | None] | str:
    """The argv prefix that runs the server as a non-root user, and that user's ids."""
    if os.geteuid() != 0:
        return [], None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        return "running as root and there is no `postgres` user for initdb"
    if not shutil.which("setpriv"):
        return "running as root and setpriv (util-linux) is missing"
    prefix = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--"]
    return prefix, (pw.pw_uid, pw.pw_gid)


def _psql(bins: dict[str, str], sock: Path, db: str, *args: str) -> str:
    argv = [bins["psql"], "-X", "-q", "-At", "-h", str(sock), "-p", PORT, "-U", SUPERUSER]
    proc = run_cmd([*argv, "-d", db, *args], timeout_s=600, check=False)
    if proc.returncode != 0:
        raise VerifyError(f"psql on database {db}: {proc.stderr.strip()[:300]}")
    return proc.stdout


def _check(bins: dict[str, str], sock: Path, want: DumpShape) -> None:
    have_dbs = set(_psql(bins, sock, "postgres", "-c", "SELECT datname FROM pg_database").split())
    missing_dbs = sorted(set(want.databases) - have_dbs)
    if missing_dbs:
        raise VerifyError(f"database(s) {', '.join(missing_dbs)} missing after the load")
    listed = (
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    )
    for db in want.databases:
        have = set(_psql(bins, sock, db, "-c", listed).splitlines())
        missing = sorted(want.tables[db] - have)
        if missing:
            raise VerifyError(f"database {db}: table(s) {', '.join(missing[:5])} missing")
        for table, rows in sorted(want.rows.get(db, {}).items()):
            got = _psql(bins, sock, db, "-c", f"SELECT count(*) FROM {table}").strip()
            if got != str(rows):
                raise VerifyError(f"database {db}: {table} has {got} rows, the dump {rows}")


def _load(bins: dict[str, str], dump: Path, want: DumpShape, prefix: Sequence[str]) -> str:
    base = Path(tempfile.mkdtemp(prefix="domum-pgdrill-"))  # short: a socket path is <108
    data, sock = base / "data", base / "sock"
    started = False
    try:
        sock.mkdir()
        owner = _owner()
        if isinstance(owner, tuple) and owner[1] is not None:
            for p in (base, sock):
                os.chown(p, *owner[1])
        base.chmod(0o755)
        init = [*prefix, bins["initdb"], "-D", str(data), "-U", SUPERUSER, "--auth=trust"]
        run_cmd([*init, "-E", "UTF8", "--no-sync"], timeout_s=300)
        opts = f"-c listen_addresses='' -c unix_socket_directories={sock} -p {PORT} -c fsync=off"
        ctl = [*prefix, bins["pg_ctl"], "-D", str(data)]
        started = True  # from here on: stop it, even when a signal ends `pg_ctl start -w`
        run_cmd([*ctl, "-o", opts, "-w", "-t", "120", "-l", str(base / "log"), "start"])
        load = [bins["psql"], "-X", "-q", "-h", str(sock), "-p", PORT, "-U", SUPERUSER]
        proc = run_cmd(
            [*load, "-d", "postgres", "-f", str(dump)],
            timeout_s=3600,
            check=False,
        )
        errors = [line for line in proc.stderr.splitlines() if "ERROR:" in line]
        if proc.returncode != 0 or errors:
            first = errors[0] if errors else proc.stderr.strip()[:300]
            raise VerifyError(f"the dump does not load: {len(errors)} error(s), first: {first}")
        _check(bins, sock, want)
        version = _psql(bins, sock, "postgres", "-c", "SHOW server_version").strip()
        return version.split()[0] if version else "?"
    finally:
        if started:
            _stop(bins, data, prefix)
        shutil.rmtree(base, ignore_errors=True)


def _stop(bins: dict[str, str], data: Path, prefix: Sequence[str]) -> None:
    """pg_ctl's immediate stop; should it fail, SIGQUIT to the postmaster its pid file names
    (what `-m immediate` sends): no server outlives its deleted directory."""
    with contextlib.suppress(Exception):
        run_cmd([*prefix, bins["pg_ctl"], "-D", str(data), "-m", "immediate", "-w", "stop"])
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGQUIT)
        for _ in range(100):  # up to 10 s for it to go
            os.kill(pid, 0)
            time.sleep(0.1)


def drill(dump: Path) -> DrillOutcome:
    """Check the script's structure, then (with local binaries) load and count it."""
    want = shape(dump)
    bins = find_programs()
    owner = _owner()
    why = bins if isinstance(bins, str) else owner if isinstance(owner, str) else ""
    if why or isinstance(bins, str) or isinstance(owner, str):
        return DrillOutcome(
            f"PARTIAL drill: the dump is whole ({want.summary()}, {want.size} bytes) but was "
            f"not loaded: {why}",
            partial=True,
        )
    version = _load(bins, dump, want, owner[0])
    return DrillOutcome(
        f"{want.summary()} loaded into a throw-away PostgreSQL {version} and counted", False
    )
