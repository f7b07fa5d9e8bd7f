"""The run record's pieces shared by the job runner and the run's life cycle: where a job's
phase is noted, a failed run's record, the log line."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..jobs import Job as BackupJob


def phase_file(state_dir: Path, job: str) -> Path:
    return state_dir / "run" / f"{job}.phase"


def failed_result(job: BackupJob, started: float, message: str) -> dict[str, Any]:
    finished = time.time()
    return {
        "job": job.name,
        "kind": job.kind,
        "status": "failed",
        "message": message,
        "started": started,
        "finished": finished,
        "duration_s": round(finished - started, 3),
        "snapshots": {},
        "kept": {},
    }


def log_line(result: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(result["finished"], UTC).isoformat(timespec="seconds")
    snaps = ",".join(f"{t}:{s}" for t, s in sorted((result.get("snapshots") or {}).items()) if s)
    parts = [
        when,
        f"job={result['job']}",
        f"status={result['status']}",
        f"duration={result.get('duration_s', 0):.1f}s",
        f"bytes={int(result.get('bytes') or 0)}",
        f"snapshots={snaps or '-'}",
    ]
    if result.get("timings"):
        parts.append("phases=" + ",".join(f"{k}:{v:.2f}s" for k, v in result["timings"].items()))
    if result.get("message"):
        parts.append(f"message={json.dumps(result['message'])}")
    return " ".join(parts)
