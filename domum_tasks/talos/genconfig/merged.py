"""The merged machine config of each node, offline: what `talosctl gen config` plus Domum's patches
produce, judged by the rules a Talos v1.13 node runs (rules.py).

`talosctl gen config` (pkg/machinery/config/generate) writes a v1alpha1 document and, since Talos
1.12 (multi-document network config), a `HostnameConfig` with `auto: stable`. `--config-patch`
then merges each patch document the way talosctl's configpatcher does:

* a document without `kind` is a v1alpha1 strategic-merge patch: mappings merge key by key,
  lists append (except the fields Talos tags `merge:"replace"`, which replace), scalars replace,
  and `$patch: delete` removes the key it sits under;
* a typed document merges into the existing document with the same apiVersion, kind and name
  (for unnamed kinds such as HostnameConfig: the same apiVersion and kind), else is added.

Secrets and certificates are left out of the model: no rule looks at them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ...inventory.model import Inventory
from .. import yaml12
from . import patches, rules

Doc = dict[str, Any]

# v1alpha1 fields tagged `merge:"replace"` (pkg/machinery/config/types/v1alpha1): a patch's list
# replaces the generated one instead of being appended to it.
REPLACE_PATHS = frozenset(
    {("cluster", "network", "podSubnets"), ("cluster", "network", "serviceSubnets")}
)


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


def strategic_merge(base: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if isinstance(value, dict) and value.get("$patch") == "delete":
                out.pop(key, None)
            elif key in out:
                out[key] = strategic_merge(out[key], value, (*path, str(key)))
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and path not in REPLACE_PATHS:
        return [*base, *copy.deepcopy(patch)]
    return copy.deepcopy(patch)


def _key(doc: Doc) -> tuple[Any, Any, Any]:
    return doc.get("apiVersion"), doc.get("kind"), doc.get("name")


def merge_documents(docs: list[Doc], patch_docs: list[Any]) -> list[Doc]:
    """Apply one patch file's documents to [v1alpha1, typed...] as talosctl does."""
    out = copy.deepcopy(docs)
    for pdoc in patch_docs:
        if not isinstance(pdoc, dict):
            raise ValueError("a patch document is not a mapping")
        if "kind" not in pdoc:
            out[0] = strategic_merge(out[0], pdoc)
            continue
        for i, existing in enumerate(out[1:], 1):
            if _key(existing) == _key(pdoc):
                out[i] = strategic_merge(existing, pdoc)
                break
        else:
            out.append(copy.deepcopy(pdoc))
    return out


def merged_config(inv: Inventory, node_id: int, rendered: Mapping[str, str]) -> list[Doc]:
    """The node's machine config after `gen config` and its patches (in `patches_for` order)."""
    from .plan import install_image

    docs = generated_documents(inv, node_id, install_image(inv, node_id))
    for rel in patches.patches_for(inv, node_id):
        docs = merge_documents(docs, yaml12.load_all(rendered[rel]))
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
