"""What the cluster decrypts with: the `sops-age` Secret, and the refusal to bootstrap a tree
it could not decrypt.

Flux's kustomize-controller decrypts SOPS-encrypted objects with the age identities of the
Secret named by `spec.decryption.secretRef` (the overlays name `sops-age`, in flux-system); each
key of that Secret ending in `.agekey` holds identities (fluxcd/kustomize-controller,
internal/decryptor/decryptor.go, `DecryptionAgeExt`). So the cluster can decrypt a file exactly
when one of its age recipients is an identity in that Secret, and `flux.bootstrap` puts there
the user's identities that the tree's files are encrypted to, nothing else.

The Secret reaches the cluster through `kubectl apply --server-side -f -` with the manifest on
stdin: the key is never in an argv, in the plan, in a log, or on disk outside the user's key file.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..findings import CheckFinding
from ..plan import Local
from ..secrets import recipients as R
from ..talos.argv import FLUX_NAMESPACE

if TYPE_CHECKING:
    from ..inventory.loader import Loaded
    from ..inventory.model import Inventory

TREE = "cluster"
SECRET_NAME = "sops-age"
SECRET_KEY = "age.agekey"  # kustomize-controller reads keys ending in .agekey
FIELD_MANAGER = "domum"
ACTION = "flux.sops-age"


def cluster_files(root: Path) -> list[R.SopsFile]:
    """The SOPS files under cluster/ that Flux decrypts (Kubernetes objects; the Talos secrets
    bundle is not one)."""
    return [f for f in R.scan(root, [TREE]) if f.is_kubernetes]


def undecryptable(files: Iterable[R.SopsFile], mine: set[str]) -> list[tuple[R.SopsFile, str]]:
    """Pure: the files a cluster holding only `mine` could not decrypt, each with why."""
    out = []
    for f in files:
        if f.placeholder:
            out.append((f, "encrypted to the placeholder recipient, whose key nobody holds"))
        elif not f.recipients & mine:
            out.append((f, f"encrypted to {R.shown(f.recipients)}, not to your age key"))
    return out


def refusal(bad: list[tuple[R.SopsFile, str]], mine: set[str]) -> ConfigError:
    by_why: dict[str, list[str]] = {}
    for f, why in bad:
        by_why.setdefault(why, []).append(f.rel)
    lines = "; ".join(f"{why}: {', '.join(rels)}" for why, rels in by_why.items())
    key = "" if mine else " (and no age key of yours was found)"
    return ConfigError(
        f"flux.bootstrap: the cluster could not decrypt {len(bad)} SOPS file(s){key}: {lines}",
        hint="put your age public key in the cluster/ rule of .sops.yaml, then run "
        "`inv secrets.rekey` (it re-keys what your key can open and says how to re-create "
        "the rest)",
    )


def recipients_for_cluster(root: Path, files: list[R.SopsFile], mine: set[str]) -> list[str]:
    """The user's public keys the cluster needs: those the tree's files are encrypted to, or,
    with no such file yet, those the cluster/ rule of .sops.yaml names."""
    need = set().union(*(f.recipients & mine for f in files)) if files else set()
    if not need:
        rule = R.rule_for(R.load_rules(root / ".sops.yaml"), f"{TREE}/secret.sops.yaml")
        need = set(R.rule_recipients(rule) & mine)
    if not need:
        raise ConfigError(
            "flux.bootstrap: none of your age keys is a recipient of the cluster/ rule of "
            ".sops.yaml, so the cluster would have no key to decrypt with",
            hint="put your age public key there (`inv secrets.init` prints it)",
        )
    return sorted(need)


def kubectl_argv(inv: Inventory) -> tuple[str, ...]:
    return (
        "kubectl",
        "apply",
        "--kubeconfig",
        inv.cluster.kubeconfig,
        "--server-side",
        "--field-manager",
        FIELD_MANAGER,
        "--filename",
        "-",
    )


def step(inv: Inventory, public_keys: Sequence[str]) -> Local:
    """The plan step: which public keys' identities go into the Secret, and the command that
    receives the manifest on stdin."""
    import shlex

    argv = kubectl_argv(inv)
    return Local(
        ACTION,
        {
            "argv": list(argv),
            "namespace": FLUX_NAMESPACE,
            "secret": SECRET_NAME,
            "recipients": list(public_keys),
        },
        desc=f"{shlex.join(argv)} < Secret {FLUX_NAMESPACE}/{SECRET_NAME} (your age key) on stdin",
    )


def manifest(namespace: str, name: str, identities: Sequence[str]) -> str:
    """The Namespace (flux bootstrap has not made it yet) and the Secret, as JSON documents
    (valid YAML, nothing to escape)."""
    data = base64_of(identities)
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "data": {SECRET_KEY: data},
        },
    ]
    return "---\n".join(json.dumps(d) + "\n" for d in docs)


def apply_secret(args: Mapping[str, Any]) -> str:
    """Handler of the step: read the identities now (not at planning), pipe the manifest."""
    from ..run import run_cmd
    from ..secrets.facts import identities

    want = list(args["recipients"])
    picked = [i for i in identities() if i.public in want]
    missing = set(want) - {i.public for i in picked}
    if missing:
        raise ConfigError(f"your age key for {R.shown(missing)} is no longer readable")
    secrets = [i.secret for i in picked]
    doc = manifest(args["namespace"], args["secret"], secrets)
    proc = run_cmd(
        args["argv"], input_text=doc, secrets=[*secrets, base64_of(secrets)], timeout_s=120
    )
    return proc.stdout.strip()


def base64_of(identities: Sequence[str]) -> str:
    return base64.b64encode(("\n".join(identities) + "\n").encode()).decode()


def check_tree(loaded: Loaded) -> Iterable[CheckFinding]:
    """`inv check`: one warning while the tree holds placeholder-encrypted Secrets (the
    committed examples), which flux.bootstrap refuses. Offline: no key material is read."""
    from ..inventory.loader import repo_root

    root = repo_root()
    if not (root / TREE).is_dir():
        return
    bad = [f for f in cluster_files(root) if f.placeholder]
    if not bad:
        yield CheckFinding("flux-secrets", "ok", f"{TREE}/", "no SOPS file uses a placeholder")
        return
    yield CheckFinding(
        "flux-secrets",
        "warning",
        f"{TREE}/",
        f"{len(bad)} SOPS file(s) are encrypted to the placeholder recipient (nobody holds its "
        "key): `inv flux.bootstrap` refuses them; put your key in .sops.yaml and run "
        "`inv secrets.rekey`, which says how to re-create them",
    )
