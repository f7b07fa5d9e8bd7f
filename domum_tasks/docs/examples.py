"""Examples for the generated task reference (docs/reference/tasks.md), one list per task.

They live here rather than in the task docstrings so `inv --help TASK` stays short and the
reference can mark the ones that run offline. `runs` is the exit code an example has against the
embedded inventory (config/domum.yaml) with no network and no secrets: the page marks it
`<!-- runnable -->` (or `exit=N`) and tests/test_docs_runnable.py runs it. None: it needs the
homelab (a host, a disk, a secret), so it is shown and not run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    command: str
    note: str = ""
    runs: int | None = None  # the exit code offline; None: not runnable offline


E = Example

EXAMPLES: dict[str, list[Example]] = {
    "check": [
        E("inv check", "the inventory, Talos patches, the GitOps tree's settings and tree", 0),
        E("inv check --json", "the findings as JSON"),
    ],
    "status": [
        E("inv status", "every part on one screen; exit 1 names each unhealthy row"),
        E("inv status --json --only pi,backup", "two parts, as JSON for a script"),
        E("inv status --timeout proxmox=5,pi=5", "two parts wait less; the others keep theirs"),
    ],
    "talos.genconfig": [
        E("inv talos.genconfig --dry-run", "show the plan"),
        E("inv talos.genconfig", "patches, machine configs and the talosconfig"),
        E(
            "inv talos.genconfig --rotate-secrets --yes",
            "NEW cluster PKI: the old talosconfig loses access",
        ),
    ],
    "talos.schematic": [
        E(
            "inv talos.schematic --offline",
            "every node's schematic id, installer and image URLs, computed locally",
            0,
        ),
        E(
            "inv talos.schematic --node 92 --verbose",
            "one node, with the schematic YAML; registers it with the Image Factory",
        ),
    ],
    "talos.apply": [
        E(
            "inv talos.apply --all --insecure",
            "nodes in maintenance mode, at their reserved addresses",
        ),
        E(
            "inv talos.apply --node 92 --insecure --at 10.0.10.153",
            "no DHCP reservation: the node's lease",
        ),
        E(
            "inv talos.apply --node 92 --dry-run",
            "a running node: the plan's notes carry talosctl's diff",
        ),
    ],
    "talos.bootstrap": [
        E("inv talos.bootstrap --dry-run"),
        E("inv talos.bootstrap --deadline 15m"),
    ],
    "talos.kubeconfig": [E("inv talos.kubeconfig --out ~/.kube/domum")],
    "talos.health": [E("inv talos.health --wait-timeout 10m")],
    "talos.upgrade": [
        E("inv talos.upgrade --dry-run", "every node, control planes first, one at a time"),
        E("inv talos.upgrade --node 92"),
    ],
    "talos.upgrade-k8s": [E("inv talos.upgrade-k8s --dry-run")],
    "talos.etcd-snapshot": [E('inv talos.etcd-snapshot --out "backups/etcd-$(date +%F).db"')],
    "talos.reboot": [E("inv talos.reboot --node 92 --wait")],
    "talos.shutdown": [E("inv talos.shutdown --node 92")],
    "talos.reset": [
        E(
            "inv talos.reset --node 92",
            "wipes STATE and EPHEMERAL; the node reboots into maintenance mode",
        ),
        E("inv talos.reset --node 92 --full --dry-run", "shows every disk a full reset would wipe"),
    ],
    "talos.discover": [E("inv talos.discover --at 10.0.10.153 --node 98 --write")],
    "flux.validate": [
        E("inv flux.validate", "the GitOps tree offline", 0),
        E("inv flux.validate --json"),
    ],
    "flux.bootstrap": [E("GITHUB_TOKEN=... inv flux.bootstrap --dry-run")],
    "flux.check": [E("inv flux.check --pre", "before bootstrap")],
    "flux.diff": [E("inv flux.diff --kustomization apps")],
    "flux.reconcile": [E("inv flux.reconcile --kustomization apps --with-source")],
    "flux.suspend": [E("inv flux.suspend --all")],
    "flux.resume": [E("inv flux.resume --kustomization apps")],
    "flux.status": [E("inv flux.status --json")],
    "flux.render-settings": [
        E("inv flux.render-settings --dry-run", "nothing to write while the file matches", 0),
        E("inv flux.render-settings"),
    ],
    "proxmox.status": [E("inv proxmox.status")],
    "proxmox.vzdump": [
        E(
            "inv proxmox.vzdump --node 96 --dry-run",
            "assumes the VM exists when PVE cannot be asked",
            0,
        )
    ],
    "proxmox.create-vm": [
        E("inv proxmox.create-vm --node 96 --dry-run", "the PVE calls that create node 96's VM", 0),
        E("inv proxmox.create-vm --node 96 --start"),
    ],
    "proxmox.destroy-vm": [E("inv proxmox.destroy-vm --node 96 --dry-run")],
    "proxmox.start": [
        E("inv proxmox.start --node unifi --dry-run", "a container, by its inventory name", 0)
    ],
    "proxmox.stop": [E("inv proxmox.stop --node 96")],
    "proxmox.shutdown": [E("inv proxmox.shutdown --node 96 --force-after 120")],
    "proxmox.reboot": [E("inv proxmox.reboot --node 96")],
    "proxmox.snapshot": [E("inv proxmox.snapshot --node 96 --name pre-upgrade --dry-run", "", 0)],
    "proxmox.snapshot-list": [E("inv proxmox.snapshot-list --node 96")],
    "proxmox.snapshot-rollback": [E("inv proxmox.snapshot-rollback --node 96 --name pre-upgrade")],
    "proxmox.snapshot-delete": [E("inv proxmox.snapshot-delete --node 96 --name pre-upgrade")],
    "proxmox.restore": [
        E("inv proxmox.restore --node 96 --dry-run", "the newest vzdump of node 96's VM")
    ],
    "pi.status": [E("inv pi.status"), E("inv pi.status --node 93 --json")],
    "pi.run": [E("inv pi.run --all --cmd 'uptime'")],
    "pi.update": [
        E("inv pi.update --all --dry-run", "apt full-upgrade on every Raspberry Pi OS Pi", 0)
    ],
    "pi.reboot": [E("inv pi.reboot --node 93 --wait")],
    "pi.enroll": [E("inv pi.enroll --node 93", "shows the host key's fingerprint and asks")],
    "pi.flash": [E("inv pi.flash --node 92 --device /dev/sdX --dry-run")],
    "backup.init": [E("inv backup.init --dry-run")],
    "backup.snapshot": [
        E("inv backup.snapshot --all --dry-run"),
        E("inv backup.snapshot --due", "what the timer runs: every job whose schedule is due"),
    ],
    "backup.list": [E("inv backup.list --job etcd")],
    "backup.prune": [E("inv backup.prune --dry-run"), E("inv backup.prune --reclaim --yes")],
    "backup.verify": [E("inv backup.verify --job etcd --subset 7")],
    "backup.restore": [E("inv backup.restore --job config --to /tmp/restore --dry-run")],
    "backup.drill": [E("inv backup.drill --job etcd")],
    "backup.install-timer": [
        E("inv backup.install-timer --dry-run", "the systemd units it would write", 0),
    ],
    "backup.key-rotate": [E("inv backup.key-rotate --target nas --dry-run")],
    "tools.check": [E("inv tools.check")],
    "tools.install": [E("inv tools.install --dry-run"), E("inv tools.install --tool talosctl")],
    "secrets.edit": [E("inv secrets.edit")],
    "secrets.keys": [
        E("inv secrets.keys", "every secret the inventory needs, and which are set", 0)
    ],
    "secrets.init": [E("inv secrets.init --dry-run", "a new age identity, if you have none")],
    "secrets.rekey": [E("inv secrets.rekey --dry-run")],
}
