"""`inv talos.genconfig` glue: probe facts, validate patches, hand the plan to the executor,
and implement the plan's Local actions (the private dir that holds the decrypted secrets bundle
for exactly as long as generation runs, sops encrypt/decrypt, mkdir, talosconfig check).

The planner (plan.py) decides; this module reads files and finds tools.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import ConfigError, Refused, ToolMissing, VerifyError
from ...inventory.loader import repo_root
from ...inventory.model import Inventory
from ...taskutil import Planned
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


PRIVATE_PREFIX = "domum-genconfig-"


def private_dir() -> str:
    """Where the decrypted bundle lives while generation runs: RAM (/dev/shm) when there is
    one, one directory per user and process, so two runs at once never share it."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else tempfile.gettempdir()
    return f"{base}/{PRIVATE_PREFIX}{os.getuid()}-{os.getpid()}"


def _remove_leftovers(path: Path) -> None:
    """Our own directories of runs killed before their cleanup (their process is gone): the
    plaintext bundle must not outlive them."""
    for old in path.parent.glob(f"{PRIVATE_PREFIX}{os.getuid()}-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if old == path or not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        _remove_private(old)


def _make_private(path: Path) -> None:
    """Create `path` 0700, or take over our own leftover (a run killed before its cleanup);
    never a directory someone else owns or a symlink planted there."""
    _remove_leftovers(path)
    try:
        path.mkdir(mode=0o700)
        return
    except FileExistsError:
        pass
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise Refused(f"{path}: exists and is not this user's own directory: remove it")
    path.chmod(0o700)
    for child in path.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def _remove_private(path: Path) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
        shutil.rmtree(path)


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
        "private-dir": lambda args: _make_private(Path(args["path"])),
        "remove-private-dir": lambda args: _remove_private(Path(args["path"])),
        "encrypt-secrets": encrypt,
        "decrypt-secrets": decrypt,
        "mkdir": mkdir,
        "remove-file": remove,
        "check-talosconfig": check_talosconfig,
    }


def plan_genconfig_task(*, rotate: bool) -> Planned:
    """Render and check the patches, probe what exists, and plan (tasks.py declares the task)."""
    from ...inventory.loader import load
    from ...taskutil import warn
    from ...tools import find_tool, install_hint

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
        tmp_dir=private_dir(),
        talosctl=str(talosctl) if talosctl else "talosctl",
    )
    if talosctl is None:  # the patches need no talosctl: render them, then stop (exit 3)
        missing = ToolMissing(
            f"talosctl not found: only the {len(rendered)} patches under {patches.PATCH_DIR}/ "
            "are rendered, no machine configs",
            hint=install_hint("talosctl") + ", then re-run",
        )
        return Planned(plan_patches_only(rendered, facts), inv, handlers(root), then_fail=missing)
    if rotate or not secrets_exist:
        check_sops_rule(root)
    if rotate and secrets_exist:
        from .plan import ROTATE_WARNING

        warn(ROTATE_WARNING)
    plan = plan_genconfig(inv, rendered, facts, rotate=rotate)
    # Every machine config names its node's installer/<id>: registered with the factory first.
    from ..ops import schematics

    resolved, registration = schematics.use_steps(inv, list(inv.talos_nodes))
    plan.steps[:0] = registration
    steps = {**handlers(root), **schematics.handlers(resolved)}

    def report(results: Sequence[Any], json_out: bool) -> None:
        written = [k for k in rendered if rendered[k] != facts.on_disk.get(k)]
        state = "created" if not secrets_exist else ("rotated" if rotate else "reused")
        summary = {
            "patches_written": written,
            "secrets": state,
            "machine_configs": [machine_config_path(inv, n) for n in inv.talos_nodes.values()],
            "talosconfig": inv.cluster.talosconfig,
        }
        if json_out:
            print(json.dumps(summary, indent=2))
            return
        print(
            f"talos.genconfig: {len(written)} patch(es) changed, secrets {state}, "
            f"{len(summary['machine_configs'])} machine configs and {inv.cluster.talosconfig} "
            "written"
        )

    return Planned(plan, inv, steps, report=report)
