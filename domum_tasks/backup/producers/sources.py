"""Producers: what fills a job's `.partial` staging directory, per job kind.

- files: `rsync -a --delete` of each host's paths over strict SSH, one mirror per host label
  (the argv here; the plan runs it);
- nas: nothing here: restic runs on the NAS itself (nas_remote.py);
- config: the encrypted secrets, the inventory and known_hosts, copied byte for byte (never
  decrypted: a file without sops metadata is refused);
- etcd-snapshot: talos.etcd-snapshot's own plan steps and verifier.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import ConfigError, VerifyError
from ...inventory.model import Inventory
from ...ssh import Target
from .transport import strict_ssh_text

RSYNC_OK = (0, 24)  # 24: some source files vanished during the transfer (churn, not loss)


def rsync_argv(
    inv: Inventory, target: Target, sources: Sequence[str], dest: Path, *, sudo: bool = False
) -> list[str]:
    """rsync -a --delete of `sources` on `target` into `dest`, relative paths kept."""
    remote = [f"{target.user}@{target.host}:{sources[0]}", *(f":{s}" for s in sources[1:])]
    return [
        "rsync",
        "-a",
        "--delete",
        "--relative",
        "--numeric-ids",
        *(["--rsync-path=sudo -n rsync"] if sudo else []),
        "-e",
        strict_ssh_text(inv, target.port),
        *remote,
        f"{dest}/",
    ]


def prune_extra(part: Path, keep: set[str]) -> None:
    """Mirrors of hosts or shares no longer in the job are dropped (restic still has them)."""
    for entry in part.iterdir():
        if entry.name not in keep and not entry.name.startswith("."):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def config_files(inv: Inventory, spec: Any) -> list[tuple[str, Path, bool]]:
    """(name in the backup, source, must be sops-encrypted) for a config job."""
    from ...inventory.loader import inventory_path
    from ...secrets.store import secrets_path
    from ...settings import repo_root
    from ...ssh import known_hosts_path
    from ...talos.genconfig.patches import SECRETS as TALOS_SECRETS

    items = [
        ("secrets.sops.yaml", secrets_path(), True),
        ("talos-secrets.sops.yaml", repo_root() / TALOS_SECRETS, True),
        ("domum.yaml", inventory_path(), False),
        ("known_hosts", known_hosts_path(inv), False),
    ]
    for extra in spec.paths:
        p = Path(os.path.expanduser(extra))
        items.append((f"extra/{p.name}", p if p.is_absolute() else repo_root() / p, False))
    return items


def _looks_encrypted(data: bytes) -> bool:
    return b"\nsops:" in data or data.startswith(b"sops:") or b'"sops":' in data


def copy_config(inv: Inventory, spec: Any, part: Path) -> dict[str, Any]:
    copied, absent = [], []
    for name, src, encrypted in config_files(inv, spec):
        if not src.exists():
            absent.append(str(src))
            continue
        dest = part / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, symlinks=True)
        else:
            data = src.read_bytes()
            if encrypted and not _looks_encrypted(data):
                raise VerifyError(
                    f"{src}: has no sops metadata: refusing to back up a plaintext secret"
                )
            dest.write_bytes(data)
            os.chmod(dest, 0o600)
        copied.append(name)
    if "domum.yaml" not in copied:
        raise ConfigError("config job: the inventory file is missing")
    return {"copied": copied, "absent": absent}
