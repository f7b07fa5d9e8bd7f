"""Producers: fill a job's `.partial` staging directory, one function per job kind.

- files: `rsync -a --delete` of each host's paths over strict SSH, one mirror per host label;
- nas: the same for the Unraid shares the job names;
- config: the encrypted secrets, the inventory and known_hosts, copied byte for byte (never
  decrypted: a file without sops metadata is refused);
- etcd-snapshot: talos.etcd-snapshot's own plan and verifier.

Each returns notes for summary.json. Nothing here decides success: the worker does.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ...errors import CommandFailed, ConfigError, VerifyError
from ...inventory.model import Inventory
from ...run import run_cmd
from ...ssh import Target, resolve
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


def run_tool(argv: Sequence[str], *, timeout_s: float, ok: Sequence[int] = (0,)) -> str:
    """run.run_cmd with the lock descriptor inherited (no second run can overlap a live child);
    a failure is one line: the tool, its exit code and the last lines it printed."""
    try:
        return run_cmd(argv, timeout_s=timeout_s, ok_codes=ok, inherit_fds=True).stderr
    except CommandFailed as exc:
        if exc.returncode is None:  # not found or timed out: the message says which
            raise
        tail = " | ".join(exc.stderr_tail.splitlines()[-3:])
        raise CommandFailed(
            f"{argv[0]} exit code {exc.returncode}: {tail}", returncode=exc.returncode
        ) from None


def _prune_extra(part: Path, keep: set[str]) -> None:
    """Mirrors of hosts or shares no longer in the job are dropped (restic still has them)."""
    for entry in part.iterdir():
        if entry.name not in keep and not entry.name.startswith("."):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _pull_all(
    inv: Inventory,
    pulls: list[tuple[str, Target, list[str], Path]],
    timeout_s: float,
    sudo: bool,
) -> dict[str, Any]:
    def pull(item: tuple[str, Target, list[str], Path]) -> tuple[str, str]:
        label, target, sources, dest = item
        dest.mkdir(parents=True, exist_ok=True)
        try:
            argv = rsync_argv(inv, target, sources, dest, sudo=sudo)
            run_tool(argv, timeout_s=timeout_s, ok=RSYNC_OK)
            return label, ""
        except CommandFailed as exc:
            return label, f"{label} ({target.host}): {exc.message}"

    with ThreadPoolExecutor(max_workers=max(1, min(len(pulls), inv.ssh.parallel))) as pool:
        results = list(pool.map(pull, pulls))
    errors = [msg for _, msg in results if msg]
    if errors:
        raise CommandFailed(f"rsync failed for {len(errors)} source(s): {'; '.join(errors)}")
    return {"sources": {label: [f"{t.host}:{s}" for s in src] for label, t, src, _ in pulls}}


def pull_files(inv: Inventory, spec: Any, part: Path, timeout_s: float) -> dict[str, Any]:
    pulls = []
    for host in spec.hosts:
        target = resolve(inv, host)
        pulls.append((target.label, target, list(spec.paths), part / target.label))
    _prune_extra(part, {label for label, *_ in pulls})
    return _pull_all(inv, pulls, timeout_s, spec.sudo)


def pull_nas(inv: Inventory, spec: Any, part: Path, timeout_s: float) -> dict[str, Any]:
    if inv.nas is None:
        raise ConfigError("a nas job needs the nas: section of the inventory")
    target = resolve(inv, "nas")
    pulls = []
    for share in spec.shares:
        path = inv.nas.shares[share].rstrip("/") or "/"
        # a trailing `/./` makes rsync --relative keep no prefix: <part>/<share>/<contents>
        pulls.append((share, target, [f"{path.rstrip('/')}/./"], part / share))
    _prune_extra(part, {share for share, *_ in pulls})
    return _pull_all(inv, pulls, timeout_s, spec.sudo)


def config_files(inv: Inventory, spec: Any) -> list[tuple[str, Path, bool]]:
    """(name in the backup, source, must be sops-encrypted) for a config job."""
    from ...inventory.loader import REPO_ROOT, inventory_path
    from ...secrets.store import secrets_path
    from ...ssh import known_hosts_path
    from ...talos.genconfig.patches import SECRETS as TALOS_SECRETS

    items = [
        ("secrets.sops.yaml", secrets_path(), True),
        ("talos-secrets.sops.yaml", REPO_ROOT / TALOS_SECRETS, True),
        ("domum.yaml", inventory_path(), False),
        ("known_hosts", known_hosts_path(inv), False),
    ]
    for extra in spec.paths:
        p = Path(os.path.expanduser(extra))
        items.append((f"extra/{p.name}", p if p.is_absolute() else REPO_ROOT / p, False))
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


def etcd_snapshot(inv: Inventory, part: Path) -> dict[str, Any]:
    """talos.etcd-snapshot's plan into the staging dir, with its verifier (quietly)."""
    from ...run import Executor
    from ...talos.ops import etcd
    from ...talos.ops.plan import plan_etcd_snapshot

    out = part / "etcd.snapshot"
    plan = plan_etcd_snapshot(inv, str(out))
    info: dict[str, Any] = {}

    def verify(args: Any) -> etcd.SnapshotInfo:
        snap = etcd.finalize_snapshot(str(args["part"]), str(args["out"]))
        info.update(size=snap.size, sha256=snap.sha256)
        return snap

    handlers = {
        "talos.mkdir": lambda a: Path(str(a["path"])).mkdir(parents=True, exist_ok=True),
        "talos.remove": lambda a: Path(str(a["path"])).unlink(missing_ok=True),
        "talos.verify-snapshot": verify,
    }
    Executor(handlers=handlers).execute(plan)
    return {"etcd": {"file": out.name, **info}, "plan": plan.title}
