"""Tasks of the secrets namespace: create an age key, edit the encrypted file, list key names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from invoke.collection import Collection
from invoke.context import Context

from ..taskutil import DRY_RUN, JSON, domum_task


@domum_task(help={"dry_run": DRY_RUN, "json": JSON})
def edit(c: Context, dry_run: bool = False, json: bool = False) -> None:
    """Edit config/secrets.sops.yaml through sops (created from the example if absent)."""
    from .. import taskutil
    from ..plan import Local, Plan
    from . import store as secrets

    path = secrets.secrets_path()
    if not dry_run:
        secrets.check_key_material()  # before creating a file nobody could then open
    plan = Plan(f"edit {path}")
    if not path.exists():
        secrets.encryption_config(path.resolve())  # a placeholder recipient fails the dry run too
        plan.note(
            f"{path} does not exist: creating it, encrypted, from {secrets.EXAMPLE_PATH.name}"
        )
        plan.add(
            Local("secrets.create", {"src": str(secrets.EXAMPLE_PATH), "dst": str(path)}),
        )
    plan.add(Local("secrets.edit", {"path": str(path)}, desc="interactive: sops opens $EDITOR"))

    def create(args: Mapping[str, Any]) -> None:
        from pathlib import Path

        src = Path(args["src"])
        if not src.is_file():
            from ..errors import ConfigError

            raise ConfigError(f"{src}: example file missing; cannot create {args['dst']}")
        secrets.encrypt_bytes(src.read_bytes(), args["dst"])

    def run_editor(args: Mapping[str, Any]) -> None:
        import os
        import subprocess

        from ..errors import CommandFailed

        secrets.check_key_material()
        argv = secrets.sops_argv("edit", args["path"])
        # Interactive: stdio stays the terminal's; nothing is captured, so nothing can leak here.
        rc = subprocess.call(argv, env={**os.environ, **secrets.SOPS_ENV})
        # sops exits 200 when the file was not changed; that is fine.
        if rc not in (0, 200):
            raise CommandFailed(f"sops edit {args['path']} exited {rc}")

    ex = taskutil.executor(
        dry_run=dry_run,
        json_out=json,
        handlers={"secrets.create": create, "secrets.edit": run_editor},
    )
    ex.execute(plan)


@domum_task(help={"json": "print the list as JSON"})
def keys(c: Context, json: bool = False) -> None:
    """List secret key names and where each comes from (env or file), never values."""
    import os

    from ..console import print_table
    from . import store as secrets

    path = secrets.secrets_path()
    in_file = set(secrets.file_key_names(path)) if path.is_file() else set()
    names = sorted(set(secrets.known_keys()) | in_file)
    rows = []
    for key in names:
        var = secrets.env_name(key)
        if os.environ.get(var):
            source = "env" + (" (overrides file)" if key in in_file else "")
        else:
            source = "file" if key in in_file else "missing"
        rows.append((key, var, source))
    print_table(
        f"secrets ({path.name}, env wins)", ("key", "env var", "source"), rows, json_out=json
    )


@domum_task(help={"dry_run": DRY_RUN, "json": JSON})
def init(c: Context, dry_run: bool = False, json: bool = False) -> None:
    """Create your age key (~/.config/sops/age/keys.txt) and print its public key."""
    import os
    from pathlib import Path

    from .. import taskutil
    from ..errors import Refused
    from ..plan import Cmd, Local, Plan
    from . import store as secrets

    key_file = Path(os.environ.get("SOPS_AGE_KEY_FILE") or secrets.default_age_key_file())
    key_file = key_file.expanduser()
    if key_file.exists():
        raise Refused(
            f"{key_file} already exists; not overwriting an age key",
            hint=f"`age-keygen -y {key_file}` prints its public key",
        )
    plan = Plan(f"create age key {key_file}")
    plan.add(
        Local("secrets.mkdir", {"path": str(key_file.parent), "mode": "0700"}),
        Cmd(("age-keygen", "-o", str(key_file)), desc="new age identity, file mode 0600"),
    )

    def mkdir(args: Mapping[str, Any]) -> None:
        Path(args["path"]).mkdir(mode=0o700, parents=True, exist_ok=True)

    ex = taskutil.executor(
        dry_run=dry_run,
        json_out=json,
        handlers={"secrets.mkdir": mkdir},
    )
    ex.execute(plan)
    if dry_run:
        return
    from ..run import run_cmd

    public = run_cmd(["age-keygen", "-y", str(key_file)], timeout_s=10).stdout.strip()
    print(f"age key written to {key_file} (keep a copy somewhere safe: without it the secrets")
    print("cannot be decrypted).")
    print(f"public key: {public}")
    print("Next: put the public key in .sops.yaml in place of")
    print(f"  age1{secrets.PLACEHOLDER_RECIPIENT}")
    print("then run `inv secrets.edit`.")


TASKS = [edit, keys, init]
ns = Collection("secrets")
for _task in TASKS:
    ns.add_task(_task)
