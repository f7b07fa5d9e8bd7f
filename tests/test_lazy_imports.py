"""Building the task tree must not import heavy libraries: `inv --list` stays fast."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

HEAVY = ["fabric", "paramiko", "proxmoxer", "rich", "pydantic", "requests", "zstandard", "pyfatfs"]


def test_building_ns_imports_no_heavy_library() -> None:
    code = (
        "import json, sys; import tasks; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(proc.stdout) == []
