"""issue 16: a job's before/after/on_error hooks and its push monitoring, with real restic (the
backup lab) and a loopback HTTP server that records every ping (no internet).

The oracle for what each service receives is its own documented push API: healthchecks.io
"Pinging API" (POST <url>/start, <url>, <url>/fail with the log as body), ntfy "Publishing"
(POST to the topic URL, Title/Priority headers), Uptime Kuma's push monitor
(?status=up|down&msg=...); exit 75 of a before hook is borgmatic's soft failure.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.backup_lab import Lab, snapshots

pytestmark = pytest.mark.integration

HC = "/ping/0f3c-uuid-of-the-check"
NTFY = "/domum-backups-topic"
KUMA = "/api/push/kumaPushToken"


@dataclass
class Recorder:
    """Every request the pinged services received: (method, path, query, headers, body)."""

    base: str
    requests: list[dict[str, Any]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    def at(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture
def services() -> Iterator[Recorder]:
    rec = Recorder("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            rec.requests.append(
                {
                    "method": "POST",
                    "path": parts.path,
                    "query": parse_qs(parts.query),
                    "headers": dict(self.headers),
                    "body": self.rfile.read(n).decode(),
                }
            )
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.base = f"http://127.0.0.1:{server.server_address[1]}"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield rec
    server.shutdown()
    server.server_close()


def monitored(lab: Lab, base: str, **spec: Any) -> None:
    """Job `pis` with all three monitors, their URLs as secrets in the environment."""
    lab.mp.setenv("DOMUM_BACKUP_MONITOR_PIS_HEALTHCHECKS", base + HC)
    lab.mp.setenv("DOMUM_BACKUP_MONITOR_PIS_NTFY", base + NTFY)
    lab.mp.setenv("DOMUM_BACKUP_MONITOR_PIS_UPTIME_KUMA", base + KUMA + "?status=up&msg=OK")
    lab.job(
        "pis",
        kind="files",
        hosts=[93],
        paths=[str(lab.src)],
        targets=["a"],
        monitor=["healthchecks", "ntfy", "uptime_kuma"],
        **spec,
    )


def hook(tmp: Path, name: str, code: int, say: str = "") -> list[str]:
    """A hook that appends its environment to <name>.log and exits `code`."""
    log = tmp / f"{name}.log"
    script = (
        f'echo "$DOMUM_JOB|${{DOMUM_STATUS:-}}|${{DOMUM_ERROR:-}}" >> {log}; '
        + (f"echo {say} >&2; " if say else "")
        + f"exit {code}"
    )
    return ["sh", "-c", script]


def calls(tmp: Path, name: str) -> list[str]:
    log = tmp / f"{name}.log"
    return log.read_text().splitlines() if log.exists() else []


def test_hooks_and_pings_of_a_good_run(lab: Lab, services: Recorder, tmp_path: Path) -> None:
    monitored(
        lab,
        services.base,
        before=hook(tmp_path, "before", 0),
        after=hook(tmp_path, "after", 0),
        on_error=hook(tmp_path, "onerr", 0),
    )
    dry = lab.inv("backup.snapshot", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert services.base not in dry.stdout and "********/start" in dry.stdout  # masked
    assert "before hook (exit 75" in dry.stdout and "after hook" in dry.stdout
    assert "pis.on_error" in dry.stdout and str(tmp_path / "before.log") in dry.stdout
    assert services.requests == [] and calls(tmp_path, "before") == []  # a dry run runs nothing

    run = lab.inv("backup.snapshot")
    assert run.returncode == 0, run.stderr
    assert calls(tmp_path, "before") == ["pis||"]
    assert calls(tmp_path, "after") == ["pis||"]
    assert calls(tmp_path, "onerr") == []
    assert services.paths() == [f"{HC}/start", HC, KUMA]  # no ntfy on success
    assert "job=pis status=ok" in services.at(HC)[0]["body"]
    assert services.at(KUMA)[0]["query"] == {"status": ["up"], "msg": ["OK"]}
    [snap] = snapshots(lab.repo("a"), "pis")
    assert "complete" in snap["tags"]
    assert services.base not in lab.log.read_text()


def test_before_exit_75_skips_softly(lab: Lab, services: Recorder, tmp_path: Path) -> None:
    """borgmatic's soft failure: no backup, not a failure, the monitors left alone."""
    monitored(
        lab,
        services.base,
        before=hook(tmp_path, "before", 75, say="disk not mounted"),
        after=hook(tmp_path, "after", 0),
        on_error=hook(tmp_path, "onerr", 0),
    )
    run = lab.inv("backup.snapshot", "--json")
    assert run.returncode == 0, run.stderr
    [res] = json.loads(run.stdout)
    assert res["status"] == "skipped" and "disk not mounted" in res["message"]
    assert snapshots(lab.repo("a"), "pis") == []
    assert calls(tmp_path, "after") == [] and calls(tmp_path, "onerr") == []
    assert services.requests == []
    assert "status=skipped" in lab.log.read_text()
    entry = lab.state()["jobs"]["pis"]
    assert entry["last_skipped"]["status"] == "skipped"
    assert "last_run" not in entry and "last_success" not in entry  # nothing ran: no alert yet
    assert 'domum_backup_last_run_success{job="pis"} 0' in lab.metrics.read_text()


def test_before_failure_fails_the_job_and_runs_on_error(
    lab: Lab, services: Recorder, tmp_path: Path
) -> None:
    monitored(
        lab,
        services.base,
        before=hook(tmp_path, "before", 3, say="database will not pause"),
        after=hook(tmp_path, "after", 0),
        on_error=hook(tmp_path, "onerr", 0),
    )
    run = lab.inv("backup.snapshot")
    assert run.returncode == 1
    assert "before hook exit 3: database will not pause" in run.stderr
    assert snapshots(lab.repo("a"), "pis") == []
    assert calls(tmp_path, "after") == []
    [line] = calls(tmp_path, "onerr")
    job, status, error = line.split("|", 2)
    assert (job, status) == ("pis", "failed") and "before hook exit 3" in error
    # no /start: borgmatic pings start only after the before hooks; failure still pings
    assert services.paths() == [f"{HC}/fail", NTFY, KUMA]
    assert "database will not pause" in services.at(f"{HC}/fail")[0]["body"]
    ntfy = services.at(NTFY)[0]
    assert ntfy["headers"]["Title"] == "backup pis failed"
    assert ntfy["headers"]["Priority"] == "high"
    assert services.at(KUMA)[0]["query"]["status"] == ["down"]


def test_after_failure_fails_the_job(lab: Lab, services: Recorder, tmp_path: Path) -> None:
    """`after` runs only after a complete snapshot; its failure fails the job (and on_error
    runs), the snapshot it followed stays complete."""
    monitored(
        lab, services.base, after=hook(tmp_path, "after", 1), on_error=hook(tmp_path, "onerr", 9)
    )
    run = lab.inv("backup.snapshot")
    assert run.returncode == 1
    assert "after hook exit 1" in run.stderr
    assert calls(tmp_path, "after") == ["pis||"]
    assert "after hook exit 1" in calls(tmp_path, "onerr")[0]
    # the on_error hook's own failure is a warning, the run's failure is the after hook's
    assert "warning: backup job pis: on_error hook exit 9" in run.stderr
    assert "complete" in snapshots(lab.repo("a"), "pis")[0]["tags"]
    assert services.paths() == [f"{HC}/start", f"{HC}/fail", NTFY, KUMA]


def test_a_dead_monitor_never_fails_the_backup(lab: Lab, tmp_path: Path) -> None:
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monitored(lab, dead)
    run = lab.inv("backup.snapshot")
    assert run.returncode == 0, run.stderr
    assert "warning: backup job pis: healthchecks ping failed" in run.stderr
    assert "uptime_kuma ping failed" in run.stderr
    assert dead + HC not in run.stderr and "kumaPushToken" not in run.stderr  # masked
    assert "complete" in snapshots(lab.repo("a"), "pis")[0]["tags"]


def test_a_missing_monitor_secret_is_bad_input(lab: Lab, tmp_path: Path) -> None:
    lab.mp.setenv("DOMUM_SECRETS_FILE", str(tmp_path / "no-secrets-file.yaml"))
    lab.job("pis", kind="files", hosts=[93], paths=[str(lab.src)], targets=["a"], monitor=["ntfy"])
    run = lab.inv("backup.snapshot", "--dry-run")
    assert run.returncode == 2
    assert "backup.monitor.pis.ntfy" in run.stderr and "Traceback" not in run.stderr


def _alive(needle: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in cmd:
                out.append(int(p.name))
    return out


def test_a_hung_before_hook_dies_with_the_job_at_its_deadline(
    lab: Lab, services: Recorder, tmp_path: Path
) -> None:
    """The hook is a step of the job's process group: the deadline kills it, then on_error
    runs (its own group) with the reason."""
    monitored(
        lab,
        services.base,
        timeout="3s",
        before=["sleep", "61.2345"],
        on_error=hook(tmp_path, "onerr", 0),
    )
    run = lab.inv("backup.snapshot", timeout=60)
    assert run.returncode == 1
    assert "killed at its deadline of 3s" in run.stderr
    assert _alive("sleep 61.2345") == []
    [line] = calls(tmp_path, "onerr")
    assert line.startswith("pis|failed|killed at its deadline")
    assert services.paths() == [f"{HC}/fail", NTFY, KUMA]


@pytest.mark.parity("backup.snapshot")
def test_hooks_and_pings_parity(
    lab: Lab, services: Recorder, tmp_path: Path, plan_parity: Any
) -> None:
    """The hooks and pings the dry-run prints are the ones the real run executes."""
    from domum_tasks.backup import tasks as T

    monitored(
        lab,
        services.base,
        before=hook(tmp_path, "before", 0),
        after=hook(tmp_path, "after", 0),
        on_error=hook(tmp_path, "onerr", 0),
    )
    [plan] = plan_parity(T.snapshot)
    assert [s.get("action") or s["kind"] for s in plan] == [
        *["backup.lock", "backup.start", "job", "backup.record"],
        *["job", "backup.ping-finish", "backup.metrics", "backup.unlock"],
    ]
    inner = [s.get("desc", "") for s in plan[2]["steps"]]
    assert inner[0].startswith("before hook") and any(d.startswith("after hook") for d in inner)
    assert services.base not in json.dumps(plan)
    assert services.paths() == [f"{HC}/start", HC, KUMA]


def test_hook_fields_are_validated() -> None:
    from pydantic import ValidationError

    from domum_tasks.inventory.model import BackupJob

    job = BackupJob(kind="files", targets=["a"], before=["sh", "-c", "exit 75"])
    assert job.before == ["sh", "-c", "exit 75"] and job.after == [] and job.monitor == []
    with pytest.raises(ValidationError, match="restic kinds"):
        BackupJob(kind="vzdump", targets=["a"], before=["true"])
    with pytest.raises(ValidationError):
        BackupJob(kind="files", targets=["a"], after=[""])
    with pytest.raises(ValidationError):
        BackupJob(kind="files", targets=["a"], monitor=["pagerduty"])
    with pytest.raises(ValidationError):  # one argv, not a shell string
        BackupJob(kind="files", targets=["a"], before="pg_isready -q")
