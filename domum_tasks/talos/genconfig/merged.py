"""The merged machine config of each node, offline: what `talosctl gen config` plus Domum's patches
produce, judged by the rules a Talos v1.13 node runs (rules.py).

`talosctl gen config` (pkg/machinery/config/generate) writes a v1alpha1 document and, since Talos
1.12 (multi-document network config), a `HostnameConfig` with `auto: stable`. `--config-patch`
then applies each patch file the way talosctl's configpatcher does (configpatch.py, written from
the Talos source and tested against its own test vectors).

Secrets and certificates are left out of the model: no rule looks at them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...inventory.model import Inventory
from . import configpatch, patches, rules

Doc = dict[str, Any]


def generated_documents(inv: Inventory, node_id: int, install_image: str) -> list[Doc]:
    """The documents `talosctl gen config --output-types <role>` writes for one node (the parts
    the rules read), before any patch."""
    node = inv.nodes[node_id]
    cp = node.role == "controlplane"
    c = inv.cluster
    machine: Doc = {
        "type": "controlplane" if cp else "worker",
        "install": {"disk": "/dev/sda", "image": install_image, "wipe": False},
        "features": {
            "diskQuotaSupport": True,
            "kubePrism": {"enabled": True, "port": 7445},
            "hostDNS": {"enabled": True, "forwardKubeDNSToHost": True},
        },
    }
    cluster: Doc = {
        "controlPlane": {"endpoint": c.endpoint},
        "clusterName": c.name,
        "network": {
            "dnsDomain": "cluster.local",
            "podSubnets": ["10.244.0.0/16"],
            "serviceSubnets": ["10.96.0.0/12"],
        },
    }
    return [
        {"version": "v1alpha1", "debug": False, "machine": machine, "cluster": cluster},
        {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "stable"},
    ]


def merge_documents(docs: list[Doc], patch_text: str) -> list[Doc]:
    """Apply one patch file to [v1alpha1, typed...] as `talosctl gen config --config-patch`."""
    return configpatch.apply(docs, configpatch.load_patches([patch_text]))


def merged_config(inv: Inventory, node_id: int, rendered: Mapping[str, str]) -> list[Doc]:
    """The node's machine config after `gen config` and its patches (in `patches_for` order)."""
    from .plan import install_image

    docs = generated_documents(inv, node_id, install_image(inv, node_id))
    for rel in patches.patches_for(inv, node_id):
        docs = merge_documents(docs, rendered[rel])
    return docs


def merged_problems(inv: Inventory, rendered: Mapping[str, str]) -> list[str]:
    """Every node's merged-config problems, each "node N (hostname): <Kind>: <message>"."""
    out: list[str] = []
    for node_id, node in inv.talos_nodes.items():
        try:
            docs = merged_config(inv, node_id, rendered)
        except (ValueError, KeyError) as exc:
            out.append(f"node {node_id} ({node.hostname}): cannot merge the patches: {exc}")
            continue
        out += [f"node {node_id} ({node.hostname}): {p}" for p in rules.validate(docs)]
    return out
