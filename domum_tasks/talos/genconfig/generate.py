"""`inv talos.genconfig` glue: probe facts, validate patches, run the plan, handle local actions.

The planner (genconfig_plan) decides; this module reads files, finds tools, owns the private
temp dir that holds the decrypted secrets bundle for exactly as long as generation runs, and
implements the plan's Local actions (sops encrypt/decrypt, mkdir, talosconfig check).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import ConfigError, ToolMissing, VerifyError
from ...inventory.loader import repo_root
from ...inventory.model import Inventory
from . import patches, schema
from .plan import GenFacts, machine_config_path, plan_genconfig, plan_patches_only

SOPS_CONFIG = ".sops.yaml"


def read_generated(root: Path) -> dict[str, str]:
    """Every YAML file under cluster/core/01-talos/ except the secrets bundle, by rel path."""
    base = root / patches.PATCH_DIR
    out: dict[str, str] = {}
    if base.is_dir():
        for path in sorted(base.rglob("*.yaml")):
            rel = path.relative_to(root).as_posix()
            if rel != patches.SECRETS:
                out[rel] = path.read_text()
    return out


def schema_problems(
    inv: Inventory, root: Path, rendered: Mapping[str, str]
) -> tuple[str, list[str]]:
    """(warning, problems): a warning when no schema exists for the pinned Talos minor."""
    path = schema.schema_path(root, inv.cluster.talos_version)
    if not path.is_file():
        return (
            f"not schema-checked: run `inv tools.install` (no Talos "
            f"{schema.minor(inv.cluster.talos_version)} schema at {path})",
            [],
        )
    ps = schema.load(path)
    problems: list[str] = []
    for rel, text in rendered.items():
        problems += schema.validate_text(ps, rel, text)
    return "", problems


_AGE_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")


def check_sops_rule(root: Path) -> None:
    """Before generating secrets: the bundle must get a full-encryption rule with real recipients.

    Catches the opaque sops failures early (placeholder key, no rule, or the cluster/ rule that
    encrypts only data/stringData and would leave the CA keys in plaintext).
    """
    import yaml

    conf = root / SOPS_CONFIG
    where = f"{conf}: creation rule for {patches.SECRETS}"
    if not conf.is_file():
        raise ConfigError(f"{conf}: missing; it names the age recipients of {patches.SECRETS}")
    rules = (yaml.safe_load(conf.read_text()) or {}).get("creation_rules") or []
    rule = next(
        (r for r in rules if re.search(str(r.get("path_regex", "")), patches.SECRETS)), None
    )
    if rule is None:
        raise ConfigError(f"{where}: none matches", hint="add one with `age: <your public key>`")
    if any(k in rule for k in ("encrypted_regex", "unencrypted_regex", "encrypted_suffix")):
        raise ConfigError(f"{where}: must encrypt every value (no encrypted_regex/suffix)")
    age = rule.get("age") or ""
    recipients = [a.strip() for a in (age if isinstance(age, list) else str(age).split(","))]
    bad = [a for a in recipients if not _AGE_RECIPIENT.match(a)]
    if not recipients or not recipients[0] or bad:
        raise ConfigError(
            f"{where}: age recipient {', '.join(bad) or '(none)'} is not an age public key",
            hint="put yours there: `inv secrets.init` creates one; `age-keygen -y KEYFILE` shows it",
        )


def _private_dir() -> str:
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="domum-genconfig-", dir=base)  # mkdtemp: mode 0700


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def handlers(root: Path) -> dict[str, Any]:
    from ...secrets import store as secrets

    def encrypt(args: Mapping[str, Any]) -> None:
        src, dst = Path(args["src"]), Path(args["dst"])
        os.chmod(src, 0o600)
        conf = root / SOPS_CONFIG
        if not conf.is_file():
            raise ConfigError(f"{conf}: missing; it names the age recipients of {patches.SECRETS}")
        previous = dst.read_bytes() if dst.exists() else None
        plain = src.read_bytes()
        secrets.encrypt_bytes(plain, dst, config=conf)
        # Round trip now, while the plaintext still exists: a bundle nobody can decrypt is a
        # locked-out cluster later (the talhelper failure mode).
        try:
            back = secrets.decrypt_bytes(dst)
            import yaml

            if yaml.safe_load(back) != yaml.safe_load(plain):
                raise VerifyError(f"{dst}: decrypted content differs from the generated bundle")
        except Exception:
            if previous is None:
                dst.unlink(missing_ok=True)
            else:
                dst.write_bytes(previous)
            raise

    def decrypt(args: Mapping[str, Any]) -> None:
        _write_private(Path(args["dst"]), secrets.decrypt_bytes(Path(args["src"])))

    def mkdir(args: Mapping[str, Any]) -> None:
        path = Path(args["path"])
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(int(str(args.get("mode", "0700")), 8))

    def remove(args: Mapping[str, Any]) -> None:
        Path(args["path"]).unlink(missing_ok=True)

    def check_talosconfig(args: Mapping[str, Any]) -> None:
        import yaml

        path = Path(args["path"])
        data = yaml.safe_load(path.read_text()) or {}
        ctx = (data.get("contexts") or {}).get(data.get("context"), {})
        if list(ctx.get("endpoints") or []) != list(args["endpoints"]):
            raise VerifyError(
                f"{path}: endpoints are {ctx.get('endpoints')}, want {args['endpoints']}"
            )
        if ctx.get("nodes"):
            raise VerifyError(f"{path}: still has a default node list {ctx['nodes']}")
        path.chmod(0o600)

    return {
        "encrypt-secrets": encrypt,
        "decrypt-secrets": decrypt,
        "mkdir": mkdir,
        "remove-file": remove,
        "check-talosconfig": check_talosconfig,
    }


def run_genconfig(*, rotate: bool, yes: bool, dry_run: bool, json_out: bool) -> None:
    from ...inventory.loader import load
    from ...taskutil import executor, warn
    from ...tools import find_tool

    root = repo_root()
    inv = load()
    rendered = patches.render(inv)
    warning, problems = schema_problems(inv, root, rendered)
    if warning:
        warn(warning)
    if problems:
        raise ConfigError(
            "generated patches fail the Talos schema:\n  " + "\n  ".join(problems),
            hint="fix the inventory (or report a Domum bug if the inventory is valid)",
        )
    from .merged import merged_problems

    broken = merged_problems(inv, rendered)
    if broken:
        raise ConfigError(
            "merged machine configs (gen config + patches) break Talos rules:\n  "
            + "\n  ".join(broken),
            hint="fix the inventory (or report a Domum bug if the inventory is valid)",
        )
    secrets_exist = (root / patches.SECRETS).is_file()
    talosctl = find_tool("talosctl")
    facts = GenFacts(
        root=str(root),
        on_disk=read_generated(root),
        secrets_exist=secrets_exist,
        talosctl=str(talosctl) if talosctl else "talosctl",
    )
    if talosctl is not None and not dry_run and (rotate or not secrets_exist):
        check_sops_rule(root)
    if rotate and secrets_exist:
        from .plan import ROTATE_WARNING

        warn(ROTATE_WARNING)
    if dry_run:
        if talosctl is None:
            warn(
                "talosctl not found: a real run would render the patches and stop (inv tools.install)"
            )
        executor(dry_run=True, json_out=json_out, inventory=inv).execute(
            plan_genconfig(inv, rendered, facts, rotate=rotate)
        )
        return
    if talosctl is None:
        plan = plan_patches_only(rendered, facts)
        executor(inventory=inv, handlers=handlers(root)).execute(plan, yes=yes)
        raise ToolMissing(
            f"talosctl not found: rendered {len(rendered)} patches under {patches.PATCH_DIR}/, "
            "machine configs not generated",
            hint="run `inv tools.install` (puts the pinned talosctl into .bin/), then re-run",
        )
    tmp = _private_dir()
    try:
        facts = GenFacts(**{**facts.__dict__, "tmp_dir": tmp})
        plan = plan_genconfig(inv, rendered, facts, rotate=rotate)
        executor(inventory=inv, handlers=handlers(root)).execute(plan, yes=yes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    written = [k for k in rendered if rendered[k] != facts.on_disk.get(k)]
    summary = {
        "patches_written": written,
        "secrets": "rotated"
        if rotate and secrets_exist
        else ("reused" if secrets_exist else "created"),
        "machine_configs": [machine_config_path(inv, n) for n in inv.talos_nodes.values()],
        "talosconfig": inv.cluster.talosconfig,
    }
    if json_out:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"talos.genconfig: {len(summary['patches_written'])} patch(es) changed, secrets "
            f"{summary['secrets']}, {len(summary['machine_configs'])} machine configs and "
            f"{summary['talosconfig']} written",
            file=sys.stdout,
        )
