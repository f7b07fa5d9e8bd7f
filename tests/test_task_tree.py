"""The task surface: every task has a one-line summary and every argument has help text."""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from invoke import Collection, Program, Task

from domum_tasks import ns

REPO = Path(__file__).resolve().parent.parent
NAMESPACES = {"talos", "flux", "proxmox", "pi", "backup", "tools"}


def walk(coll: Collection, prefix: str = "") -> Iterator[tuple[str, Task]]:
    for name, task in coll.tasks.items():
        yield prefix + name, task
    for name, sub in coll.collections.items():
        yield from walk(sub, f"{prefix}{name}.")


def test_required_namespaces_and_check_exist() -> None:
    assert set(ns.collections) >= NAMESPACES
    assert "check" in ns.tasks


def test_every_task_has_a_summary_line() -> None:
    bad = []
    for name, task in walk(ns):
        doc = inspect.getdoc(task.body) or ""
        first = doc.splitlines()[0] if doc else ""
        if not (first.endswith(".") and len(first) <= 80):
            bad.append(f"{name}: {first!r}")
    assert bad == []


def test_every_argument_has_help() -> None:
    for name, task in walk(ns):
        params = [
            p
            for p in inspect.signature(task.body).parameters.values()
            if p.name not in ("c", "ctx")
        ]
        for param in params:
            assert task.help.get(param.name, "").strip(), f"{name}: --{param.name} has no help"
        unknown = set(task.help) - {p.name for p in params}
        assert not unknown, f"{name}: help for unknown args {unknown}"


def test_every_argument_is_an_option_with_a_default() -> None:
    """A required positional swallows `--help` (`inv pi.flash --help` would run the task)."""
    required = [
        f"{name} {param.name}"
        for name, task in walk(ns)
        for param in list(inspect.signature(task.body).parameters.values())[1:]
        if param.default is inspect.Parameter.empty
    ]
    assert required == []


def test_tasks_with_yes_also_have_dry_run() -> None:
    for name, task in walk(ns):
        args = set(inspect.signature(task.body).parameters)
        if "yes" in args:
            assert "dry_run" in args, f"{name}: destructive task without --dry-run"


def test_inv_list_shows_every_task() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "--list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for name, _task in walk(ns):
        assert name.replace("_", "-") in proc.stdout, name


def test_a_non_numeric_value_for_a_number_option_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`inv pi.flash --node abc` must not end in invoke's ValueError traceback."""
    numeric = [
        (name, param.name.replace("_", "-"))
        for name, task in walk(ns)
        for param in list(inspect.signature(task.body).parameters.values())[1:]
        if type(param.default) is int
    ]
    assert numeric, "expected at least one int option (--node)"
    for name, flag in numeric:
        with pytest.raises(SystemExit) as done:
            Program(namespace=ns, name="inv").run(["inv", name, f"--{flag}", "abc"])
        err = capsys.readouterr().err
        assert done.value.code == 2, (name, flag, err)
        assert err == f"domum: --{flag} 'abc' is not a whole number\n", err
