"""The command line as a user types it: `domum` and `inv`, parser errors, closed pipes, shims."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from domum_tasks.cli import suggestion
from tests.conftest import REPO

# Runs real processes (the talosctl/flux stand-ins, kubectl, the domum CLI): not the fast tier.
pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def _run(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["pi.flash", "--node", "92", "--devce", "x"],
            "domum: No idea what '--devce' is! (did you mean '--device'?)",
        ),
        (["chek"], "domum: No idea what 'chek' is! (did you mean 'check'?)"),
        (["--help", "talos.aply"], "(did you mean 'talos.apply'?)"),
        (["talos.apply", "--node"], "domum: Flag --node needed value and was not given one!"),
        (
            ["pi.run", "--all", "--cmd", "true", "--parallel", "x"],
            "domum: --parallel 'x' is not a whole number",
        ),
        (["pi.flash", "--node", "abc", "--device", "x"], "domum: --node abc: no such node"),
    ],
)
def test_domum_parser_errors_are_bad_input_with_a_hint(
    args: list[str], message: str, tmp_path: Path
) -> None:
    proc = _run(str(BIN / "domum"), *args, cwd=tmp_path)  # runs from any directory
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_domum_runs_tasks_from_any_directory(tmp_path: Path) -> None:
    proc = _run(str(BIN / "domum"), "--list", cwd=tmp_path)
    assert proc.returncode == 0 and "talos.genconfig" in proc.stdout


def test_suggestion_only_when_close() -> None:
    assert suggestion("--devce", ["--device", "--dry-run"]) == " (did you mean '--device'?)"
    assert suggestion("--zzz", ["--device"]) == ""


@pytest.mark.parametrize("prog", ["inv", "domum"])
# A task's table, a task's JSON, and invoke's own output: the same code paths `check` takes,
# without its seconds of validation per run.
@pytest.mark.parametrize("args", [["tools.check"], ["tools.check", "--json"], ["--list"]])
def test_closed_pipe_exits_141_quietly(prog: str, args: list[str]) -> None:
    proc = subprocess.Popen(
        [str(BIN / prog), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first byte (`| true`)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""


def test_shim_finds_the_repo_venv_without_activation(
    tmp_path: Path, fake_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A repo whose .sops.yaml names a real age recipient, and talosctl in DOMUM_BIN_DIR (the
    # stand-in): the dry-run succeeds only where the real run would (README exit codes).
    root = tmp_path / "repo"
    root.mkdir()
    sops = (REPO / ".sops.yaml").read_text()
    recipient = "age1qkkcm0hz3c044ac678sxvy39e3w66q2qwf6celw7a8pgsp2e8e3sdfcsmv"
    (root / ".sops.yaml").write_text(
        sops.replace("age1REPLACE-WITH-YOUR-AGE-PUBLIC-KEY", recipient)
    )
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(root))
    assert '"kind"' in _shim_dry_run("talos-genconfig.sh", tmp_path)


def _shim_dry_run(script: str, cwd: Path) -> str:
    """scripts/<script> --dry-run --json with neither the venv activated nor its bin on PATH;
    its output."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"  # no .venv/bin, as in cron or a fresh shell
    proc = subprocess.run(
        [str(REPO / "scripts" / script), "--dry-run", "--json"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )
    assert "inv: not found" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_flux_sync_shim_needs_no_activated_venv(tmp_path: Path, fake_cli: Any) -> None:
    """scripts/flux-sync.sh runs the repo's .venv/bin/inv too, not an `inv` from PATH."""
    assert '"reconcile"' in _shim_dry_run("flux-sync.sh", tmp_path)


def _arguments(task: Any) -> list[Any]:
    """task.get_arguments() without using up its help dict (invoke pops from it)."""
    saved = dict(task.help)
    try:
        return list(task.get_arguments())
    finally:
        task.help.update(saved)


def test_short_flags_mean_the_same_in_every_task() -> None:
    from domum_tasks import ns
    from domum_tasks.taskutil import SHORT_FLAGS

    seen: dict[str, set[str]] = {}
    for name in ns.task_names:
        for arg in _arguments(ns[name]):
            long, shorts = arg.names[0], [n for n in arg.names if len(n) == 1]
            if long in SHORT_FLAGS:
                assert shorts == [SHORT_FLAGS[long]], (name, arg.names)
            else:
                assert shorts == [], f"{name}: --{long} has short flag(s) {shorts}"
            for short in shorts:
                seen.setdefault(short, set()).add(long)
    assert all(len(longs) == 1 for longs in seen.values()), seen
    assert seen["d"] == {"dry-run"} and seen["n"] == {"node"}


@pytest.mark.parametrize("value", [0, -1])
@pytest.mark.parametrize("task", ["run", "update"])
def test_parallel_must_be_positive(task: str, value: int) -> None:
    from invoke import Context, Exit

    from domum_tasks.pi.fleet import tasks as fleet_tasks

    kwargs = {"cmd": "true"} if task == "run" else {}
    with pytest.raises(Exit) as exc:
        getattr(fleet_tasks, task)(Context(), all_=True, parallel=value, dry_run=True, **kwargs)
    assert exc.value.code == 2
    assert str(exc.value.message) == f"domum: --parallel {value}: must be 1 or more (hosts at once)"


def test_int_option_without_default_is_cast() -> None:
    from domum_tasks import ns

    (arg,) = [a for a in _arguments(ns["pi.run"]) if a.name == "parallel"]
    assert arg.kind is int and arg.default is None


def test_json_keys_are_snake_case(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from domum_tasks.console import json_key, print_table

    print_table("t", ("key", "env var", "Reboot Required"), [("a", "B", True)], json_out=True)
    assert json.loads(capsys.readouterr().out) == [
        {"key": "a", "env_var": "B", "reboot_required": True}
    ]
    assert json_key("root-disk") == "root_disk"
