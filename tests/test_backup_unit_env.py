"""issue 16 #8: the systemd unit decrypts secrets without $HOME. A system service has no HOME,
so sops cannot find ~/.config/sops/age/keys.txt; the unit names the installing user's key file.
Checked with a real age key, a real sops-encrypted secrets file, and the unit's own
Environment= lines under `env -i` (systemd's default PATH, no HOME)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Context

from tests.sops_repo import age_key, need_age, sops

# systemd's PATH for a system service (systemd.exec(5), "Environment variables in spawned
# processes"); HOME, USER and LOGNAME are set only with User=.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WORKTREE = Path(__file__).resolve().parent.parent
READ = (
    "from domum_tasks.secrets.store import Secrets; print(Secrets()['backup.targets.a.password'])"
)


def unit(path: Path) -> tuple[dict[str, str], Path]:
    """(Environment= of the unit, WorkingDirectory=)."""
    env: dict[str, str] = {}
    wd = Path("/")
    for line in path.read_text().splitlines():
        if line.startswith("Environment="):
            for word in shlex.split(line.removeprefix("Environment=")):
                k, _, v = word.partition("=")
                env[k] = v
        elif line.startswith("WorkingDirectory="):
            wd = Path(line.removeprefix("WorkingDirectory="))
    return env, wd


def run_as_unit(env: dict[str, str], wd: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH only makes the worktree's code importable; it says nothing about the key
    full = {"PATH": SYSTEMD_PATH, **env, "PYTHONPATH": str(WORKTREE)}
    argv = ["env", "-i", *(f"{k}={v}" for k, v in full.items()), sys.executable, "-c", READ]
    return subprocess.run(argv, cwd=wd, capture_output=True, text=True, timeout=60)


def test_unit_decrypts_secrets_without_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_age()
    home = tmp_path / "home"
    key = home / ".config" / "sops" / "age" / "keys.txt"
    key.parent.mkdir(parents=True)
    public = age_key(key)
    plain = tmp_path / "plain.yaml"
    plain.write_text("backup:\n  targets:\n    a:\n      password: pw-from-sops\n")
    enc = sops("--encrypt", "--age", public, str(plain), cwd=tmp_path)
    assert enc.returncode == 0, enc.stderr
    secrets = tmp_path / "secrets.sops.yaml"
    secrets.write_text(enc.stdout)
    plain.unlink()

    # the installing user's shell: the key in its default place, no SOPS_AGE_* set
    monkeypatch.setenv("HOME", str(home))
    for var in ("SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "XDG_CONFIG_HOME", "SUDO_USER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOMUM_SECRETS_FILE", str(secrets))
    from domum_tasks.backup.tasks import install_timer

    units = tmp_path / "units"
    install_timer(Context(), unit_dir=str(units))
    text = (units / "domum-backup.service").read_text()
    assert "AGE-SECRET-KEY" not in text  # the key's path, never the key
    env, wd = unit(units / "domum-backup.service")
    run = run_as_unit(env, wd)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "pw-from-sops"
    assert env["SOPS_AGE_KEY_FILE"] == str(key) and "HOME" not in env

    # the simulation is honest: the same environment without the key's path cannot decrypt
    del env["SOPS_AGE_KEY_FILE"]
    assert run_as_unit(env, wd).returncode != 0
