"""Every task that changes something has --dry-run and --json, its dry-run is checked by the
executor (every step has a handler), and a parity test runs it both ways (tests/fixtures/parity.py).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.parity import collected_files, json_arrays, parity_covered


def _tasks() -> dict[str, Any]:
    from domum_tasks import ns

    return {name: ns[name] for name in ns.task_names}


def _options(task: Any) -> set[str]:
    return set(inspect.signature(task.body).parameters)


# Tasks that only read: no --dry-run (their output is the answer), and nothing to compare.
READ_ONLY = {
    "check", "flux.validate", "flux.status", "proxmox.status", "proxmox.snapshot-list",
    "pi.status", "backup.list", "tools.check", "secrets.keys", "status",
}  # fmt: skip


def test_every_task_that_writes_has_dry_run_and_json() -> None:
    missing = [
        name
        for name, task in _tasks().items()
        if name not in READ_ONLY and not {"dry_run", "json"} <= _options(task)
    ]
    assert not missing, f"tasks that change something but have no --dry-run/--json: {missing}"


def test_every_mutating_task_has_a_parity_case(request: pytest.FixtureRequest) -> None:
    every = {p.name for p in Path(__file__).parent.glob("test_*.py")}
    if not every <= collected_files(request.config):
        pytest.skip("only some test files were collected: run the whole suite to judge coverage")
    mutating = {name for name, task in _tasks().items() if "dry_run" in _options(task)}
    uncovered = sorted(mutating - parity_covered(request.config))
    assert not uncovered, f"no dry-run/real-run parity test for: {uncovered}"


def test_json_arrays_reads_each_plan_printed() -> None:
    text = 'note\n[\n  {"kind": "cmd", "argv": ["a"]}\n]\n[]\nnot [json\n[{"kind": "x"}]'
    assert json_arrays(text) == [[{"kind": "cmd", "argv": ["a"]}], [], [{"kind": "x"}]]
