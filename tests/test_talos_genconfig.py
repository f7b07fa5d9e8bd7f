"""`inv talos.genconfig` end to end: strict fake talosctl, real sops + age, a temp repo layout."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context, Exit

from domum_tasks.inventory.loader import load
from domum_tasks.talos.genconfig import patches
from domum_tasks.talos.genconfig.tasks import genconfig
from tests.conftest import CONTRACTS, LOOPBACK_INVENTORY, REPO

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CONTRACTS.exists(), reason="../shared/contracts is absent"),
    pytest.mark.skipif(shutil.which("age-keygen") is None, reason="age not installed"),
]
CPS = ["127.0.0.90", "127.0.0.91", "127.0.0.96"]


class Env:
    def __init__(self, root: Path, fake: Any, key: Path) -> None:
        self.root, self.fake, self.key = root, fake, key

    def calls(self) -> list[dict[str, Any]]:
        return list(self.fake.records)

    def patch_tree(self) -> dict[str, bytes]:
        base = self.root / patches.PATCH_DIR
        return {p.relative_to(self.root).as_posix(): p.read_bytes() for p in base.rglob("*.yaml")}

    @property
    def secrets(self) -> Path:
        return self.root / patches.SECRETS

    def decrypt(self) -> dict[str, Any]:
        out = subprocess.run(
            ["sops", "decrypt", str(self.secrets)], capture_output=True, check=True, text=True
        ).stdout
        data = yaml.safe_load(out)
        assert isinstance(data, dict)
        return data


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_cli: Any, image_factory: Any) -> Env:
    """A temp repo root (with a .sops.yaml for a fresh age key), the strict fake talosctl, and
    the loopback inventory pointed at the Image Factory stand-in (genconfig registers first)."""
    root = tmp_path / "repo"
    root.mkdir()
    key = tmp_path / "age.key"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    sops_rules = (REPO / ".sops.yaml").read_text()
    (root / ".sops.yaml").write_text(
        sops_rules.replace("age1REPLACE-WITH-YOUR-AGE-PUBLIC-KEY", public)
    )
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(root))
    inventory = yaml.safe_load(LOOPBACK_INVENTORY.read_text())
    inventory["cluster"]["image_factory"] = image_factory.url
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    monkeypatch.setenv("DOMUM_INVENTORY", str(tmp_path / "inventory.yaml"))
    monkeypatch.setenv("DOMUM_TALOS_SCHEMA_DIR", str(CONTRACTS))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key))
    return Env(root, fake_cli, key)


def run(**kw: Any) -> None:
    genconfig(Context(), **kw)


def test_genconfig_writes_patches_secrets_configs_and_talosconfig(env: Env, capsys) -> None:  # type: ignore[no-untyped-def]
    run()
    # patches: same text as the pure renderer gives for the loopback inventory
    tree = env.patch_tree()
    assert sorted(tree) == sorted([*patches.render(load()), patches.SECRETS])
    # secrets: fully sops-encrypted, decryptable with our key, a real bundle
    raw = env.secrets.read_text()
    assert "sops:" in raw and "ENC[AES256_GCM" in raw
    bundle = env.decrypt()
    assert {"cluster", "secrets", "trustdinfo", "certs"} <= set(bundle)
    for value in [bundle["secrets"]["bootstraptoken"], bundle["certs"]["os"]["key"]]:
        assert str(value) not in raw
    # machine configs: one per Talos node, patched, validated; private
    out = env.root / "clusterconfig"
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    configs = sorted(p.name for p in out.glob("domum-*.yaml"))
    assert configs == [
        "domum-domum-cp1.yaml",
        "domum-domum-cp2.yaml",
        "domum-domum-cp3.yaml",
        "domum-domum-m720q.yaml",
        "domum-domum-x.yaml",
        "domum-domum-xr2.yaml",
    ]
    cp1 = list(yaml.safe_load_all((out / "domum-domum-cp1.yaml").read_text()))
    main = next(d for d in cp1 if d and "version" in d)
    assert main["machine"]["type"] == "controlplane"
    assert main["machine"]["install"]["disk"] == "/dev/mmcblk0"
    assert main["machine"]["install"]["image"].startswith("factory.talos.dev/metal-installer/")
    assert main["cluster"]["ca"]["crt"] == bundle["certs"]["k8s"]["crt"]  # --with-secrets used
    kinds = {d.get("kind") for d in cp1 if d}
    assert {"HostnameConfig", "LinkConfig", "Layer2VIPConfig", "ResolverConfig"} <= kinds
    worker = list(yaml.safe_load_all((out / "domum-domum-x.yaml").read_text()))
    assert "Layer2VIPConfig" not in {d.get("kind") for d in worker if d}
    # talosconfig: control planes as endpoints, no default nodes
    tc = yaml.safe_load((out / "talosconfig").read_text())
    ctx = tc["contexts"][tc["context"]]
    assert ctx["endpoints"] == CPS
    assert not ctx.get("nodes")
    assert stat.S_IMODE((out / "talosconfig").stat().st_mode) == 0o600
    # every talosctl call was accepted by the strict fake; the decrypted bundle is gone
    calls = env.calls()
    assert calls and all(c["ok"] for c in calls), [c for c in calls if not c["ok"]]
    validated = [c for c in calls if c["argv"][1] == "validate"]
    assert len(validated) == 6
    with_secrets = {
        c["argv"][c["argv"].index("--with-secrets") + 1]
        for c in calls
        if "--with-secrets" in c["argv"]
    }
    (tmp_bundle,) = with_secrets
    assert not Path(tmp_bundle).exists() and not Path(tmp_bundle).parent.exists()
    assert "secrets created" in capsys.readouterr().out
    # ... and would pass the contract checker too (the shared contract test reads the same file)
    src = env.root.parent / "argv.json"
    src.write_text(json.dumps([c["argv"] for c in calls]))
    checker = [sys.executable, str(CONTRACTS / "check_argv.py"), str(src), "-q"]
    proc = subprocess.run([*checker, "--talos-version", "v1.13"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_second_run_changes_nothing_and_existing_secrets_are_never_overwritten(env: Env) -> None:
    run()
    before = env.patch_tree()
    bundle = env.decrypt()
    calls_before = len(env.calls())
    run(json=True)
    assert env.patch_tree() == before  # byte-identical, secrets file included
    second = env.calls()[calls_before:]
    assert not [c for c in second if c["argv"][1:3] == ["gen", "secrets"]]
    assert [c for c in second if c["argv"][1:3] == ["gen", "config"]]
    # A bundle present before the patches (e.g. a fresh clone) is used as is, never replaced.
    for rel in before:
        if rel != patches.SECRETS:
            (env.root / rel).unlink()
    run()
    assert env.patch_tree() == before
    tc = yaml.safe_load((env.root / "clusterconfig" / "talosconfig").read_text())
    assert tc["contexts"][tc["context"]]["ca"] == bundle["certs"]["os"]["crt"]


def test_rotate_secrets_needs_yes(env: Env, capsys) -> None:  # type: ignore[no-untyped-def]
    run()
    secrets_bytes = env.secrets.read_bytes()
    calls_before = len(env.calls())
    with pytest.raises(Exit) as exc:
        run(rotate_secrets=True)
    assert exc.value.code == 4
    err = capsys.readouterr().err
    assert "talosconfig" in err and "--yes" in str(exc.value.message)
    assert env.secrets.read_bytes() == secrets_bytes
    assert env.calls()[calls_before:] == []  # refused before running anything

    old = env.decrypt()
    run(rotate_secrets=True, yes=True)
    new = env.decrypt()
    assert new["certs"]["os"]["key"] != old["certs"]["os"]["key"]


def test_without_talosctl_patches_are_rendered_and_exit_3(env: Env) -> None:
    env.fake.remove("talosctl")
    with pytest.raises(Exit) as exc:
        run()
    assert exc.value.code == 3
    assert "inv tools.install" in str(exc.value.message)
    assert len(env.patch_tree()) == 8 and not env.secrets.exists()
    assert not (env.root / "clusterconfig").exists()


def test_placeholder_age_recipient_is_refused_before_generating(env: Env) -> None:
    (env.root / ".sops.yaml").write_text((REPO / ".sops.yaml").read_text())
    with pytest.raises(Exit) as exc:
        run()
    assert exc.value.code == 2
    assert "not an age public key" in str(exc.value.message)
    assert env.calls() == [] and not env.secrets.exists()


def installer_ids(steps: list[dict[str, Any]]) -> list[str]:
    """The schematic id of every `--install-image` a plan's gen config commands bake in."""
    argvs = [s["argv"] for s in steps if s["kind"] == "cmd" and "--install-image" in s["argv"]]
    images = [a[a.index("--install-image") + 1] for a in argvs]
    return [i.split("-installer/")[1].split(":")[0] for i in images]


def test_dry_run_json_is_a_plan_and_touches_nothing(  # type: ignore[no-untyped-def]
    env: Env, capsys, image_factory: Any
) -> None:
    run(dry_run=True, json=True)
    steps = json.loads(capsys.readouterr().out)
    # the factory serves installer/<id> only for registered schematics: the POST comes first
    assert [s.get("action") for s in steps[:2]] == [
        "talos.schematic-register",
        "talos.schematic-lock",
    ]
    assert steps[0]["args"]["factory"] == image_factory.url
    assert "POST " + image_factory.url + "/schematics" in steps[0]["desc"]
    ids = installer_ids(steps)
    assert len(ids) == 6 and set(ids) == set(steps[0]["args"]["ids"])
    assert image_factory.bodies == []  # the dry-run sent nothing
    assert steps[2]["kind"] == "write"
    assert any(s.get("argv", [None, None])[1:3] == ["gen", "secrets"] for s in steps)
    assert env.patch_tree() == {} and env.calls() == []
    assert not os.path.exists(env.root / "clusterconfig")
