"""Tasks of the secrets namespace: create an age key, edit the encrypted file, list key names.

secrets.edit and secrets.init are declarations (taskutil.plan_task): their planners check what
the real run needs (key material, a usable .sops.yaml, no key to overwrite) in the dry-run too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from invoke.collection import Collection
from invoke.context import Context

from ..taskutil import Planned, domum_task, plan_task

if TYPE_CHECKING:
    from ..run import StepResult


@plan_task()
def edit(c: Context) -> Planned:
    """Edit config/secrets.sops.yaml through sops (created from the example if absent)."""
    from ..plan import Local, Plan
    from . import store as secrets

    path = secrets.secrets_path()
    secrets.check_key_material()  # before creating a file nobody could then open
    plan = Plan(f"edit {path}")
    if not path.exists():
        secrets.encryption_config(path.resolve())  # a placeholder recipient fails here
        plan.note(
            f"{path} does not exist: creating it, encrypted, from {secrets.EXAMPLE_PATH.name}"
        )
        plan.add(
            Local("secrets.create", {"src": str(secrets.EXAMPLE_PATH), "dst": str(path)}),
        )
    plan.add(Local("secrets.edit", {"path": str(path)}, desc="interactive: sops opens $EDITOR"))
    return Planned(plan, handlers={"secrets.create": _create, "secrets.edit": _run_editor})


def _create(args: Mapping[str, Any]) -> None:
    from pathlib import Path

    from ..errors import ConfigError
    from . import store as secrets

    src = Path(args["src"])
    if not src.is_file():
        raise ConfigError(f"{src}: example file missing; cannot create {args['dst']}")
    secrets.encrypt_bytes(src.read_bytes(), args["dst"])


def _run_editor(args: Mapping[str, Any]) -> None:
    from ..errors import CommandFailed
    from ..run import run_interactive
    from . import store as secrets

    # Interactive: stdio stays the terminal's; nothing is captured, so nothing can leak here.
    rc = run_interactive(secrets.sops_argv("edit", args["path"]), env=secrets.SOPS_ENV)
    # sops exits 200 when the file was not changed; that is fine.
    if rc not in (0, 200):
        raise CommandFailed(f"sops edit {args['path']} exited {rc}")


@domum_task(help={"json": "print the list as JSON"})
def keys(c: Context, json: bool = False) -> None:
    """List secret key names and where each comes from (env or file), never values."""
    from .. import settings
    from ..console import print_table
    from . import store as secrets

    path = secrets.secrets_path()
    in_file = set(secrets.file_key_names(path)) if path.is_file() else set()
    names = sorted(set(secrets.known_keys()) | in_file)
    rows = []
    for key in names:
        var = secrets.env_name(key)
        if settings.get(var) and secrets.is_placeholder(settings.get(var) or ""):
            source = "env: placeholder value, counts as unset"
        elif settings.get(var):
            source = "env" + (" (overrides file)" if key in in_file else "")
        else:
            source = "file" if key in in_file else "missing"
        rows.append((key, var, source))
    print_table(
        f"secrets ({path.name}, env wins)", ("key", "env var", "source"), rows, json_out=json
    )


@plan_task()
def init(c: Context) -> Planned:
    """Create your age key (~/.config/sops/age/keys.txt) and print its public key."""
    from pathlib import Path

    from .. import settings
    from ..errors import Refused
    from ..plan import Cmd, Local, Plan
    from . import store as secrets

    key_file = Path(settings.get("SOPS_AGE_KEY_FILE") or secrets.default_age_key_file())
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
        Cmd(("age-keygen", "-y", str(key_file)), desc="its public key", timeout_s=10),
    )

    def report(results: Sequence[StepResult], json_out: bool) -> None:
        public = results[-1].stdout.strip()
        if json_out:
            import json

            print(json.dumps({"key_file": str(key_file), "public_key": public}, indent=2))
            return
        print(f"age key written to {key_file} (keep a copy somewhere safe: without it the secrets")
        print("cannot be decrypted).")
        print(f"public key: {public}")
        print("Next: put the public key in .sops.yaml in place of")
        print(f"  age1{secrets.PLACEHOLDER_RECIPIENT}")
        print("and of the cluster/ rule's placeholder recipient, then run `inv secrets.rekey`")
        print("(it says which example Secrets to re-create) and `inv secrets.edit`.")

    return Planned(plan, handlers={"secrets.mkdir": _mkdir}, report=report)


def _mkdir(args: Mapping[str, Any]) -> None:
    from pathlib import Path

    Path(args["path"]).mkdir(mode=0o700, parents=True, exist_ok=True)


@plan_task(yes=True)
def rekey(c: Context) -> Planned:
    """Re-encrypt every SOPS file (config/, cluster/) to the recipients in .sops.yaml."""
    from ..errors import ConfigError
    from ..inventory.loader import repo_root
    from . import facts, recipients
    from . import rekey as R
    from . import store as secrets

    root = repo_root()
    files = recipients.scan(root, R.REKEY_DIRS)
    rules = recipients.load_rules(root / ".sops.yaml")
    if files and not rules:
        raise ConfigError(f"no creation_rules in {root / '.sops.yaml'}")
    wanted = R.targets(root, files, rules)  # a placeholder left in .sops.yaml fails first
    secrets.check_key_material()  # sops needs a key the files are encrypted to
    mine = {i.public for i in facts.identities()}
    planned = R.plan_rekey(root, wanted, mine)

    def report(results: Sequence[StepResult], json_out: bool) -> None:
        done = [ch.file.rel for ch in planned.changes]
        if json_out:
            import json

            stuck = [ch.file.rel for ch in planned.stuck]
            print(json.dumps({"rekeyed": done, "cannot": stuck}, indent=2))
            return
        for rel in done:
            print(f"re-keyed {rel}")
        if not done:
            print("nothing to re-key")

    then_fail = R.stuck_error(planned.stuck) if planned.stuck else None
    return Planned(
        planned.plan, report=report, tools=("sops",), then_fail=then_fail, show_notes=True
    )


TASKS = [edit, keys, init, rekey]
ns = Collection("secrets")
for _task in TASKS:
    ns.add_task(_task)
