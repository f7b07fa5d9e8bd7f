"""Pure planner for `inv talos.genconfig`: inventory + facts -> Plan (no I/O, no Context).

Steps, in order:
  0. (added by generate.py) register each node's schematic with the Image Factory, which
     serves installer/<id> only for registered schematics (talos/ops/schematics.py);
  1. write the patches whose content changed (and remove generated patches of removed nodes);
  2. secrets (in a private 0700 dir, removed at the end even after a failure): first run
     `talosctl gen secrets` into it and encrypt the bundle
     with sops to cluster/core/01-talos/secrets.sops.yaml; afterwards only decrypt it into the
     temp dir (0600). `rotate` regenerates it: destructive, the old talosconfig loses access;
  3. per Talos node `talosctl gen config ... --output-types controlplane|worker` into
     clusterconfig/<cluster>-<hostname>.yaml, then `talosctl validate --mode metal` on it;
  4. the talosconfig: generated, endpoints set to the control-plane IPs, node list emptied.

gen/validate are offline talosctl commands: they take no --talosconfig/--nodes/--endpoints.
`talosctl config endpoint|node` edit a talosconfig file and take only --talosconfig.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ...inventory.model import Inventory, Node
from ...plan import Cmd, Local, Plan, Write
from ..argv import controlplane_ips, talosctl_offline
from ..schematic import node_installer_image, node_schematic_id
from . import patches

SECRETS_PLAIN = "secrets.yaml"
VALIDATE_MODE = "metal"
ROTATE_WARNING = (
    "--rotate-secrets replaces the cluster's CA and tokens: the existing talosconfig and "
    "every running node's trust are lost; configs must be re-applied to nodes in maintenance "
    "mode (reset) afterwards"
)


@dataclass(frozen=True)
class GenFacts:
    """What the task probed: the repo root, patch files on disk, the secrets file, tools."""

    root: str
    on_disk: Mapping[str, str] = field(default_factory=dict)  # rel path -> text (01-talos/**)
    secrets_exist: bool = False
    tmp_dir: str = "<tmp>"  # private 0700 dir for the decrypted bundle (generate.private_dir)
    talosctl: str = "talosctl"


def schematic_id(inv: Inventory, node: Node) -> str:
    """The node's schematic id (an inventory `schematic.id` must be that id: ConfigError)."""
    return node_schematic_id(inv, node)


def install_image(inv: Inventory, node_id: int) -> str:
    node = inv.nodes[node_id]
    return node_installer_image(inv, node, schematic_id(inv, node))


def out_dir(inv: Inventory) -> str:
    """clusterconfig/ (the directory of the inventory's talosconfig), relative to the root."""
    return str(PurePosixPath(inv.cluster.talosconfig).parent)


def machine_config_path(inv: Inventory, node: Node) -> str:
    return f"{out_dir(inv)}/{inv.cluster.name}-{node.hostname}.yaml"


def _k8s(inv: Inventory) -> str:
    return inv.cluster.kubernetes_version.removeprefix("v")


def _gen_config_base(inv: Inventory, secrets_file: str) -> list[str]:
    c = inv.cluster
    return [
        c.name,
        c.endpoint,
        "--with-secrets",
        secrets_file,
        "--talos-version",
        ".".join(c.talos_version.split(".")[:2]),
        "--kubernetes-version",
        _k8s(inv),
        "--with-docs=false",
        "--with-examples=false",
    ]


def _argv(facts: GenFacts, argv: tuple[str, ...]) -> tuple[str, ...]:
    return (facts.talosctl, *argv[1:])


def patch_steps(rendered: Mapping[str, str], facts: GenFacts) -> list[Write | Local]:
    """Write what changed; remove generated patches nobody renders any more."""
    steps: list[Write | Local] = []
    for rel, text in rendered.items():
        if facts.on_disk.get(rel) != text:
            steps.append(Write(f"{facts.root}/{rel}", text, 0o644, desc="generated patch"))
    for rel in patches.stale_files(rendered, facts.on_disk):
        steps.append(
            Local("remove-file", {"path": f"{facts.root}/{rel}"}, desc="node left the inventory")
        )
    return steps


def plan_genconfig(
    inv: Inventory, rendered: Mapping[str, str], facts: GenFacts, *, rotate: bool = False
) -> Plan:
    plan = Plan("talos.genconfig")
    plan.add(*patch_steps(rendered, facts))
    if not plan.steps:
        plan.note("patches under cluster/core/01-talos/ are up to date")
    root = facts.root
    secrets_file = f"{facts.tmp_dir}/{SECRETS_PLAIN}"
    # The decrypted bundle lives in a private dir for exactly as long as generation runs.
    plan.add(Local("private-dir", {"path": facts.tmp_dir}, desc="0700, for the decrypted bundle"))
    plan.finally_steps.append(
        Local("remove-private-dir", {"path": facts.tmp_dir}, desc="the plaintext bundle goes")
    )
    sops_file = f"{root}/{patches.SECRETS}"
    gen_secrets = Cmd(
        _argv(facts, talosctl_offline("gen secrets", "--output-file", secrets_file)),
        desc="new Talos secrets bundle (CA, tokens) into the private temp dir",
    )
    if not facts.secrets_exist:
        plan.note(f"{patches.SECRETS} does not exist: generating the cluster's secrets once")
        plan.add(
            gen_secrets,
            Local(
                "encrypt-secrets",
                {"src": secrets_file, "dst": sops_file},
                desc="sops+age encrypt with the .sops.yaml creation rule",
            ),
        )
    elif rotate:
        plan.note(f"warning: {ROTATE_WARNING}")
        plan.add(
            gen_secrets,
            Local(
                "encrypt-secrets",
                {"src": secrets_file, "dst": sops_file},
                desc="REPLACES the existing secrets bundle",
                destructive=True,
            ),
        )
    else:
        plan.note(
            f"{patches.SECRETS} exists: reusing it (never regenerated without --rotate-secrets)"
        )
        plan.add(
            Local(
                "decrypt-secrets",
                {"src": sops_file, "dst": secrets_file, "mode": "0600"},
                desc="decrypted only for this run",
            ),
        )
    out = out_dir(inv)
    plan.add(Local("mkdir", {"path": f"{root}/{out}", "mode": "0700"}, desc="git-ignored"))
    for node_id, node in inv.talos_nodes.items():
        role = "controlplane" if node.role == "controlplane" else "worker"
        target = machine_config_path(inv, node)
        patch_args: list[str] = []
        for rel in patches.patches_for(inv, node_id):
            patch_args += ["--config-patch", f"@{rel}"]
        gen = talosctl_offline(
            "gen config",
            *_gen_config_base(inv, secrets_file),
            "--install-image",
            install_image(inv, node_id),
            *patch_args,
            "--output-types",
            role,
            "--output",
            target,
            "--force",
        )
        plan.add(
            Cmd(_argv(facts, gen), cwd=root, desc=f"node {node_id} {node.hostname} ({role})"),
            Cmd(
                _argv(
                    facts, talosctl_offline("validate", "--config", target, "--mode", VALIDATE_MODE)
                ),
                cwd=root,
            ),
        )
    talosconfig = inv.cluster.talosconfig
    endpoints = controlplane_ips(inv)
    plan.add(
        Cmd(
            _argv(
                facts,
                talosctl_offline(
                    "gen config",
                    *_gen_config_base(inv, secrets_file),
                    "--output-types",
                    "talosconfig",
                    "--output",
                    talosconfig,
                    "--force",
                ),
            ),
            cwd=root,
            desc="talosconfig (admin client certificate)",
        ),
        # `config endpoint|node` edit the file itself; --talosconfig names which file.
        Cmd(
            (facts.talosctl, "config", "endpoint", "--talosconfig", talosconfig, *endpoints),
            cwd=root,
            desc="endpoints: the control planes",
        ),
        Cmd(
            (facts.talosctl, "config", "node", "--talosconfig", talosconfig),
            cwd=root,
            desc="no default node list: every call names its nodes",
        ),
        Local("check-talosconfig", {"path": f"{root}/{talosconfig}", "endpoints": endpoints}),
    )
    return plan


def plan_patches_only(rendered: Mapping[str, str], facts: GenFacts) -> Plan:
    """What runs when talosctl is missing: the patches, nothing else."""
    plan = Plan("talos.genconfig (patches only)")
    plan.add(*patch_steps(rendered, facts))
    if not plan.steps:
        plan.note("patches under cluster/core/01-talos/ are up to date")
    return plan
