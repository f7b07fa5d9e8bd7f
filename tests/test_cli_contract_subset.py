"""The committed CLI contract subset (tests/cli_contract/) that the talosctl/flux stand-in uses."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import CONTRACTS, REPO
from tests.fakes import fakecli

SUBSET = REPO / "tests" / "cli_contract"
GENERATOR = REPO / "scripts" / "gen_cli_contract.py"
FAKECLI = REPO / "tests" / "fakes" / "fakecli.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_contract", GENERATOR)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not CONTRACTS.is_dir(), reason="../shared/contracts absent")
def test_committed_subset_matches_the_full_contract() -> None:
    proc = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--contracts", str(CONTRACTS)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(not CONTRACTS.is_dir(), reason="../shared/contracts absent")
def test_check_mode_notices_a_stale_subset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _generator()
    for name in ("talosctl-cli.json", "flux-cli.json", "check_argv.py", "commands.txt"):
        (tmp_path / name).write_text((SUBSET / name).read_text())
    monkeypatch.setattr(gen, "OUT", tmp_path)
    assert gen.main(["--check", "--contracts", str(CONTRACTS)]) == 0
    data = json.loads((tmp_path / "flux-cli.json").read_text())
    data["check"]["flags"].remove("--pre")  # a flag lost in the committed copy
    (tmp_path / "flux-cli.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    assert gen.main(["--check", "--contracts", str(CONTRACTS)]) == 1


def test_every_listed_command_and_handler_is_in_the_subset() -> None:
    listed = _generator().read_commands(SUBSET / "commands.txt")
    import fake_flux  # the handler modules import `fakecli` top-level (its dir is on sys.path)
    import fake_talos

    assert fakecli.CONTRACTS == SUBSET
    for prog, handlers in (("talosctl", fake_talos.HANDLERS), ("flux", fake_flux.HANDLERS)):
        data = json.loads((SUBSET / f"{prog}-cli.json").read_text())
        commands = {k for k in data if not k.startswith("_")}
        assert set(listed[prog]) <= commands
        assert set(handlers) <= commands, f"{prog}: a stand-in handler has no contract entry"


def _fake(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FAKECLI), *argv], capture_output=True, text=True, timeout=60
    )


@pytest.mark.contract_exempt("runs rejected command lines on purpose")
def test_stand_in_is_strict_without_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a clone sees: the subset rejects unknown flags, bad values and unlisted commands."""
    monkeypatch.delenv("DOMUM_CONTRACTS_DIR", raising=False)
    ok = _fake("talosctl", "version", "--client")
    assert ok.returncode == 0, ok.stderr
    bad_flag = _fake("flux", "check", "--pree")
    assert (bad_flag.returncode, bad_flag.stderr) == (1, "Error: unknown flag: --pree\n")
    bad_value = _fake("talosctl", "health", "-n", "127.0.0.90", "--wait-timeout", "600")
    assert 'invalid argument "600" for "--wait-timeout"' in bad_value.stderr
    unlisted = _fake("talosctl", "dashboard", "-n", "127.0.0.90")
    assert unlisted.returncode == 1
    assert 'unknown command "dashboard" for "talosctl"' in unlisted.stderr
