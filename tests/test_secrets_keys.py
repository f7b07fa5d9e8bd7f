"""config/secrets.example.yaml (what `inv secrets.keys` lists) names exactly the secrets the code
reads, and a placeholder value copied from it counts as unset (issue 16, smaller defects).

The keys the code reads are recorded at run time: each read site runs against the shipped
inventory with a recording, empty secret store, and the store's own record of the keys asked
for is compared with the example's keys. A static scan keeps the list of read sites honest: a
new one fails here until it is added (and its key listed in the example)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from invoke import Context

from domum_tasks.secrets import store

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "config" / "domum.yaml"
READ_SITE = re.compile(r"\bload_secrets\(\)|\bsecrets\.load\(\)|\bSecrets\(\)")
READ_SITES = {  # the modules that read secrets, each exercised below
    "domum_tasks/pve.py",
    "domum_tasks/flux/tasks.py",
    "domum_tasks/pi/flash/session.py",
    "domum_tasks/backup/repository/access.py",
    "domum_tasks/backup/tasks.py",  # the monitors' URLs, key-rotate's new password
    "domum_tasks/up/preflight.py",  # the Git token flux bootstrap will need
}


def test_every_module_that_reads_secrets_is_exercised_here() -> None:
    found = {
        str(p.relative_to(REPO))
        for p in (REPO / "domum_tasks").rglob("*.py")
        if p.parent.name != "secrets" and READ_SITE.search(p.read_text())
    }
    assert found == READ_SITES, "a new secret read site: add it here and its key to the example"


@pytest.fixture
def asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> store.Secrets:
    """An empty store (no file, no env) that remembers every key asked for."""
    rec = store.Secrets(tmp_path / "absent.sops.yaml", env={})
    monkeypatch.setattr(store, "load", lambda path=None: rec)
    for var in ("GITHUB_TOKEN", "GITLAB_TOKEN", "GITEA_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    data = yaml.safe_load(SHIPPED.read_text())
    data["raspios"] = {"wifi": {"ssid": "domum-iot", "country": "DE"}}  # the optional one
    inv = tmp_path / "domum.yaml"
    inv.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("DOMUM_INVENTORY", str(inv))
    return rec


def _quietly(fn: Any, *args: Any, **kw: Any) -> None:
    with contextlib.suppress(Exception, SystemExit):  # unset: each site refuses its own way
        fn(*args, **kw)


def test_the_example_lists_every_key_the_code_reads_and_no_other(asked: store.Secrets) -> None:
    from domum_tasks import pve
    from domum_tasks.backup import jobs
    from domum_tasks.backup.repository import access
    from domum_tasks.backup.snapshot import pings
    from domum_tasks.backup.tasks import key_rotate
    from domum_tasks.flux.tasks import bootstrap
    from domum_tasks.inventory.loader import load
    from domum_tasks.pi.flash import session
    from domum_tasks.up import preflight

    inv = load()
    for host in inv.proxmox:
        _quietly(pve.token_secret, host)
    for name, t in inv.backup.targets.items():
        if t.type == "restic":
            _quietly(access.repo_for, inv, name, asked)
            _quietly(key_rotate, Context(), target=name, dry_run=True)
    [config] = jobs.select(inv, "config")
    for service in ("healthchecks", "ntfy", "uptime_kuma"):  # one job's monitors, as shipped
        spec = config.spec.model_copy(update={"monitor": [service]})
        _quietly(pings.urls, inv, [jobs.Job("config", spec)], asked)
    _quietly(bootstrap, Context(), dry_run=True)
    _quietly(preflight._git_token, SimpleNamespace(inv=inv))
    for node in inv.pis.values():
        _quietly(session.wifi_psk, inv, node)
    assert sorted(asked._asked) == store.known_keys()


def test_placeholders_count_as_unset(tmp_path: Path) -> None:
    env = {
        "DOMUM_BACKUP_TARGETS_NAS_PASSWORD": "change-me",
        "DOMUM_FLUX_GIT_TOKEN": "ghp_change-me",
        "DOMUM_PROXMOX_PVE1_TOKEN_SECRET": "00000000-0000-0000-0000-000000000000",
        "DOMUM_RASPIOS_WIFI_PSK": "a real passphrase",
    }
    s = store.Secrets(tmp_path / "absent.sops.yaml", env=env)
    assert s.get("raspios.wifi_psk") == "a real passphrase"
    for key in ("backup.targets.nas.password", "flux.git_token", "proxmox.pve1.token_secret"):
        assert s.get(key) is None and key not in s
        with pytest.raises(store.ConfigError, match="placeholder value"):
            s[key]
    # every value the example ships is a placeholder
    example = store.flatten(yaml.safe_load(store.EXAMPLE_PATH.read_text()))
    assert all(store.is_placeholder(v) for v in example.values()), example


def test_a_placeholder_password_is_refused_by_a_backup_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invoke.exceptions import Exit

    from domum_tasks.backup.tasks import snapshot

    monkeypatch.setenv("DOMUM_BACKUP_TARGETS_NAS_PASSWORD", "change-me")
    monkeypatch.setenv("DOMUM_BACKUP_TARGETS_GCS_PASSWORD", "change-me")
    monkeypatch.setenv("DOMUM_SECRETS_FILE", str(tmp_path / "absent.sops.yaml"))
    monkeypatch.setenv("DOMUM_INVENTORY", str(SHIPPED))
    with pytest.raises(Exit) as exc:
        snapshot(Context(), job="etcd", dry_run=True)
    assert exc.value.code == 2 and "placeholder value" in str(exc.value.message)
