"""What a `postgres` job's snapshot holds: one pg_dumpall script (`<job>.sql`). Restoring it
means writing that file out (`restic dump`); its structure says what a load must bring back.

The parse reads pg_dumpall's plain output as PostgreSQL 15 writes it:
- `\\connect NAME`, or `\\connect -reuse-previous=on "dbname='NAME'"` for a name that needs
  quoting (src/fe_utils/string_utils.c, appendPsqlMetaConnect);
- `CREATE TABLE schema.name (` with identifiers quoted as quote_ident does (pg_dump's fmtId);
- table data as `COPY schema.name (cols) FROM stdin;`, one line per row, ended by `\\.`;
- last, `-- PostgreSQL database cluster dump complete` between two `--` lines
  (src/bin/pg_dump/pg_dumpall.c, main): a dump without it was cut short.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import VerifyError
from ...plan import Cmd, Local, Plan, ResultOf
from ...taskutil import Planned
from ..producers.postgres import DUMP_TRAILER
from ..repository import restic

_IDENT = r'(?:"(?:[^"]|"")*"|[^"\s.(]+)'
_QUALIFIED = rf"({_IDENT}\.{_IDENT})"
_TABLE = re.compile(rf"^CREATE (?:UNLOGGED )?TABLE {_QUALIFIED} ")
_COPY = re.compile(rf"^COPY {_QUALIFIED} .*FROM stdin;$")
_QUOTED_CONNECT = re.compile(r"""^\\connect -reuse-previous=on "dbname='((?:[^'\\]|\\.)*)'"$""")


@dataclass
class DumpShape:
    """Per database (by the name \\connect uses): its tables and the rows COPY loads."""

    tables: dict[str, set[str]] = field(default_factory=dict)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    size: int = 0

    @property
    def databases(self) -> list[str]:
        return sorted(self.tables)

    def counts(self) -> tuple[int, int, int]:
        tables = sum(len(t) for t in self.tables.values())
        rows = sum(n for r in self.rows.values() for n in r.values())
        return len(self.tables), tables, rows

    def summary(self) -> str:
        dbs, tables, rows = self.counts()
        return f"{dbs} database(s) ({', '.join(self.databases)}), {tables} table(s), {rows} row(s)"


def _connect_target(line: str) -> str | None:
    m = _QUOTED_CONNECT.match(line)
    if m:  # the connstr value escapes ' and \ with a backslash, psql's "..." doubles "
        return re.sub(r"\\(.)", r"\1", m.group(1)).replace('""', '"')
    if line.startswith("\\connect "):
        return line.split(" ", 1)[1].strip()
    return None


def shape(path: Path) -> DumpShape:
    """The dump's databases, tables and row counts; VerifyError when it is not a whole
    pg_dumpall script."""
    out = DumpShape(size=path.stat().st_size)
    db = ""
    copying: dict[str, int] | None = None
    table = ""
    last = ""
    with path.open(encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            line = raw.rstrip("\n")
            if line and line != "--":  # the trailer sits in a comment block: --, it, --
                last = line
            if copying is not None:
                if line == "\\.":
                    copying = None
                else:
                    copying[table] += 1
                continue
            target = _connect_target(line)
            if target is not None:
                db = target
                out.tables.setdefault(db, set())
                continue
            m = _TABLE.match(line)
            if m and db:
                out.tables[db].add(m.group(1))
                continue
            m = _COPY.match(line)
            if m and db:
                table = m.group(1)
                copying = out.rows.setdefault(db, {})
                copying[table] = 0
    if copying is not None or last != DUMP_TRAILER:
        raise VerifyError(
            f"{path.name}: not a whole pg_dumpall script (no {DUMP_TRAILER!r} at its end)"
        )
    # template1 and postgres are in every cluster; an empty template1 section says nothing
    if not out.tables.get("template1"):
        out.tables.pop("template1", None)
    return out


def snapshot_file(snap: dict[str, Any], job: str) -> str:
    """The dump's path in the snapshot (`--stdin-filename <job>.sql` is saved as /<job>.sql)."""
    paths = snap.get("paths") or []
    return str(paths[0]) if paths else f"/{job}.sql"


def dump_step(r: restic.Repo, snap: dict[str, Any], job: str, out: Path, timeout_s: float) -> Cmd:
    sid = str(snap.get("short_id") or snap["id"])
    return restic.cmd(
        r,
        ["dump", "--target", str(out), sid, snapshot_file(snap, job)],
        desc=f"the dump of snapshot {sid} ({str(snap.get('time', ''))[:19]}) from {r.name}",
        timeout_s=timeout_s,
        check=True,
        lock="restore",
    )


def how_to_load(path: Path) -> list[str]:
    return [
        f"load it into a new, empty PostgreSQL cluster as its superuser: psql -X -d postgres -f {path}",
        "  (pg_dumpall's script creates the roles and databases itself; a CREATE ROLE of the "
        "superuser the new cluster already has fails harmlessly; for CloudNativePG: "
        "kubectl exec -i <primary> -c postgres -- psql -X -d postgres < " + f"{path})",
    ]


PLACE = "backup.pg-place"


def restore_plan(
    job: str, r: restic.Repo, snap: dict[str, Any], dest: Path, timeout_s: float
) -> Plan:
    """`backup.restore` of a postgres job: the dump written into `dest` (through a hidden
    part file, renamed once it is whole), never loaded anywhere: loading it is the operator's
    step (how_to_load)."""
    from ..bookkeeping import interrupt

    name = Path(snapshot_file(snap, job)).name
    part = dest / f".{name}.domum-part"
    trap, untrap = interrupt.trap_steps()
    plan = Plan(f"restore the pg_dumpall of job {job} from {r.name} into {dest / name}")
    plan.add(
        trap,
        Local("backup.mkdir", {"path": str(dest)}),
        interrupt.grouped(dump_step(r, snap, job, part, timeout_s), "dump"),
        Local(
            PLACE,
            {"restored": ResultOf(2), "from": str(part), "to": str(dest / name)},
            desc="check it is a whole pg_dumpall script, then rename it into place",
        ),
    )
    plan.finally_steps += [Local("backup.remove-file", {"path": str(part)}), untrap]
    plan.secrets.append(r.password)
    return plan


def place(args: Mapping[str, Any]) -> DumpShape:
    from ..bookkeeping import interrupt

    interrupt.raise_failed(args.get("restored"), "restic dump")
    part, to = Path(str(args["from"])), Path(str(args["to"]))
    got = shape(part)
    os.replace(part, to)
    return got


def handlers() -> dict[str, Callable[[Mapping[str, Any]], Any]]:
    from ..bookkeeping import interrupt

    def mkdir(args: Mapping[str, Any]) -> None:
        Path(str(args["path"])).mkdir(parents=True, exist_ok=True)

    def remove(args: Mapping[str, Any]) -> None:
        Path(str(args["path"])).unlink(missing_ok=True)

    return {
        "backup.mkdir": mkdir,
        "backup.remove-file": remove,
        PLACE: place,
        **interrupt.Trap().handlers(),
    }


def planned(inv: Any, job: str, r: restic.Repo, snap: dict[str, Any], dest: Path) -> Planned:
    """`backup.restore`'s Planned for a postgres job."""
    spec = inv.backup.jobs[job]
    plan = restore_plan(job, r, snap, dest, spec.timeout)
    to = dest / Path(snapshot_file(snap, job)).name

    def report(results: list[Any], json_out: bool) -> None:
        got = next(x.value for x in results if getattr(x.step, "action", "") == PLACE)
        print(
            f"restored {job} snapshot {snap.get('short_id')} ({str(snap.get('time', ''))[:19]}) "
            f"from {r.name} into {to}: a whole pg_dumpall script, {got.summary()}, "
            f"{got.size} bytes"
        )
        print("\n".join(how_to_load(to)))

    return Planned(plan, inv, handlers(), report=report)
