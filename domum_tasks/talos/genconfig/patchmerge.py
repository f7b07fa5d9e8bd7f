"""The value-level half of talosctl's configpatcher (see configpatch.py): how one document merges
into another, how a `$patch: delete` finds what it deletes, and RFC 6902 JSON Patch.

Sources, siderolabs/talos v1.13.9: pkg/machinery/config/merge/merge.go `merge` (the rules),
configloader/internal/decoder/selector.go `deleteForPath`/`deleteStructFrom` (deletes), the
`Merge` methods named in the tables, and configpatcher/json6902.go (evanphx/json-patch).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Path = tuple[str, ...]


class PatchError(ValueError):
    """A patch talosctl would refuse, with talosctl's words."""


def _v1(*paths: str) -> frozenset[tuple[str, Path]]:
    return frozenset(("v1alpha1", tuple(p.split("."))) for p in paths)


# Fields tagged `merge:"replace"`: v1alpha1_types.go APIServerConfig.AuditPolicyConfig,
# ClusterNetworkConfig.PodSubnet/ServiceSubnet; network/rule_config.go Ingress and Ports.
REPLACE = _v1(
    "cluster.apiServer.auditPolicy", "cluster.network.podSubnets", "cluster.network.serviceSubnets"
) | {("NetworkRuleConfig", ("ingress",)), ("NetworkRuleConfig", ("portSelector", "ports"))}

# v1alpha1_types.go `(*Args).Merge`: extraArgs merge key by key, each value replaced whole.
ARGS = _v1(
    "machine.kubelet.extraArgs",
    "cluster.apiServer.extraArgs",
    "cluster.controllerManager.extraArgs",
    "cluster.proxy.extraArgs",
    "cluster.scheduler.extraArgs",
    "cluster.etcd.extraArgs",
)

Match = Callable[[dict[str, Any], dict[str, Any]], bool]


def _same_device(old: dict[str, Any], new: dict[str, Any]) -> bool:
    # v1alpha1_types.go (*NetworkDeviceList).mergeDevice: by interface name, else by selector
    if new.get("interface"):
        return bool(old.get("interface") == new["interface"])
    sel = new.get("deviceSelector")
    return sel is not None and old.get("deviceSelector") == sel


def _same(key: str, zero: Any = "") -> Match:
    return lambda old, new: bool(old.get(key, zero) == new.get(key, zero))


# Lists whose `Merge` method matches items and merges them instead of appending; the bool says
# the matched item is replaced whole (ImageVerificationRules) instead of merged.
KEYED_LISTS: dict[tuple[str, Path], tuple[Match, bool]] = {
    ("v1alpha1", ("machine", "network", "interfaces")): (_same_device, False),
    # (*VlanList).mergeVlan
    ("v1alpha1", ("machine", "network", "interfaces", "[]", "vlans")): (_same("vlanId", 0), False),
    # (*AdmissionPluginConfigList).mergeConfig
    ("v1alpha1", ("cluster", "apiServer", "admissionControl")): (_same("name"), False),
    # runtime/extensions/service_config.go (*ConfigFileList).mergeConfigFile
    ("ExtensionServiceConfig", ("configFiles",)): (_same("mountPath"), False),
    # security/image_verification.go (*ImageVerificationRules).Merge
    ("ImageVerificationConfig", ("rules",)): (_same("image"), True),
}

# block/byte_size.go (*ByteSize).Merge copies the patch's value even when it is empty, and
# ProvisioningSpec is a plain struct field: a patch of these kinds always sets minSize.
MIN_SIZE_KINDS = frozenset(
    {"VolumeConfig", "UserVolumeConfig", "RawVolumeConfig", "SwapVolumeConfig"}
)

# Go maps (deleting a key that is not there fails); every other mapping is a struct.
MAPS = ARGS | _v1(
    "machine.sysctls",
    "machine.sysfs",
    "machine.nodeLabels",
    "machine.nodeAnnotations",
    "machine.nodeTaints",
    "machine.registries.mirrors",
    "machine.registries.config",
    "cluster.extraManifestHeaders",
)
# `Unstructured` fields (v1alpha1_unstructured.go): maps all the way down.
UNSTRUCTURED = _v1(
    "machine.baseRuntimeSpecOverrides",
    "machine.kubelet.extraConfig",
    "machine.kubelet.credentialProviderConfig",
    "cluster.apiServer.auditPolicy",
    "cluster.scheduler.config",
)


def _is_map(kind: str, path: Path) -> bool:
    if (kind, path) in MAPS or path[-2:] in (("resources", "requests"), ("resources", "limits")):
        return True
    return any((kind, path[:i]) in UNSTRUCTURED for i in range(1, len(path) + 1))


def _is_zero(value: Any) -> bool:
    return not isinstance(value, bool) and value in ("", 0)


def merge_value(left: Any, right: Any, kind: str, path: Path) -> Any:
    """merge.go `merge`: the merged value (left may be reused)."""
    if right is None:  # a nil pointer, map or slice: nothing to merge
        return left
    if left is None:
        # a Merge method runs even on a nil list, so a patch's own duplicates merge together
        left = [] if (kind, path) in KEYED_LISTS and isinstance(right, list) else None
        if left is None:
            return right
    if (kind, path) in REPLACE:
        return right
    if isinstance(left, dict) != isinstance(right, dict) or isinstance(left, list) != isinstance(
        right, list
    ):
        where = ".".join(path)
        raise PatchError(
            f"merge type mismatch at '{where}': left {type(left).__name__} right {type(right).__name__}"
        )
    if (kind, path) in ARGS:
        return {**left, **right}
    if isinstance(left, dict):
        for key, value in right.items():
            if value is not None:
                left[key] = merge_value(left.get(key), value, kind, (*path, str(key)))
        return left
    if isinstance(left, list):
        keyed = KEYED_LISTS.get((kind, path))
        if keyed is None:
            return [*left, *right]  # slices concatenate
        same, replace = keyed
        for item in right:
            i = next((i for i, old in enumerate(left) if same(old, item)), None)
            if i is None:
                left.append(item)
            else:
                left[i] = item if replace else merge_value(left[i], item, kind, (*path, "[]"))
        return left
    # scalars: a zero value does not overwrite, but false does (merge.go, the scalar case)
    return left if _is_zero(right) else right


def merge_document(left: dict[str, Any], right: dict[str, Any]) -> None:
    """merge.Merge(leftDoc, rightDoc) for two documents with the same id (in place)."""
    kind = str(left.get("kind") or "v1alpha1")
    merge_value(left, right, kind, ())
    if kind in MIN_SIZE_KINDS:
        prov = left.setdefault("provisioning", {})
        size = (right.get("provisioning") or {}).get("minSize")
        if size is None:
            prov.pop("minSize", None)
        else:
            prov["minSize"] = size
        if not prov:
            del left["provisioning"]


def _text(value: Any) -> str | None:
    """What deleteStructFrom compares: a string field's value (reflect String() of an int or
    bool field is "<int Value>", which never matches)."""
    return value if isinstance(value, str) else None


def _delete(doc: dict[str, Any], kind: str, path: Path, key: str, value: str) -> None:
    node: Any = doc
    for i, seg in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, list):  # selector.go deleteStructFrom
            if not last:
                raise PatchError("searching for complex paths in slices is not supported")
            if not seg.startswith("["):
                raise PatchError("searching for non-integer keys in slices is not supported")
            for j, item in enumerate(node):
                if isinstance(item, dict) and _text(item.get(key)) == value:
                    del node[j]
                    return
            raise PatchError("lookup failed")
        if not isinstance(node, dict):
            raise PatchError("lookup failed")
        if node.get(seg) is not None:
            if last:
                del node[seg]
                return
            node = node[seg]
        elif last and not _is_map(kind, path[:i]):
            return  # a struct field that is already zero: SetZero succeeds
        else:
            raise PatchError("lookup failed")  # a nil pointer or a missing map key


def apply_delete(
    doc: dict[str, Any], ident: tuple[str, str, str], path: Path, key: str, value: str
) -> bool:
    """selector.go ApplyTo: delete in place; True when the whole document goes."""
    api, kind, name = ident
    label = f"{api}/{kind}"
    where = ".".join(path)
    if not path:
        if kind == "v1alpha1":
            raise PatchError(
                f"patch delete: path '' in document '{label}': can't delete the root of the legacy document"
            )
        return True  # ErrZeroedDocument
    try:
        _delete(doc, kind, path, key, value)
    except PatchError as exc:
        inner = f"failed to delete path '{where}': {exc}"
        if name:  # namedSelector.ApplyTo
            raise PatchError(f"named patch delete: document {label}: {inner}") from None
        raise PatchError(f"patch delete: path '{where}' in document '{label}': {inner}") from None
    return False


# --- RFC 6902 (json6902.go JSON6902 -> evanphx/json-patch Apply) ------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], op: str) -> Any:
    node = doc
    for p in parts[:-1]:
        try:
            node = node[int(p)] if isinstance(node, list) else node[p]
        except (KeyError, IndexError, ValueError, TypeError):
            raise PatchError(f"{op} operation does not apply: doc is missing path") from None
    return node


def _get(doc: Any, parts: list[str], op: str) -> Any:
    node = _parent(doc, parts, op)
    try:
        return node[int(parts[-1])] if isinstance(node, list) else node[parts[-1]]
    except (KeyError, IndexError, ValueError, TypeError):
        raise PatchError(f"{op} operation does not apply: doc is missing path") from None


def _put(doc: Any, parts: list[str], value: Any, op: str, insert: bool) -> None:
    node = _parent(doc, parts, op)
    last = parts[-1]
    if isinstance(node, list):
        idx = len(node) if last == "-" else int(last)
        if not 0 <= idx <= len(node) - (0 if insert else 1):
            raise PatchError(f"{op} operation does not apply: index out of range")
        node.insert(idx, value) if insert else node.__setitem__(idx, value)
    elif isinstance(node, dict):
        if not insert and last not in node:
            raise PatchError(f"{op} operation does not apply: doc is missing key: {last}")
        node[last] = value
    else:
        raise PatchError(f"{op} operation does not apply: doc is missing path")


def _remove(doc: Any, parts: list[str]) -> Any:
    value = _get(doc, parts, "remove")
    node = _parent(doc, parts, "remove")
    del node[int(parts[-1]) if isinstance(node, list) else parts[-1]]
    return value


def json6902(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply a JSON Patch to one document (a copy)."""
    out = copy.deepcopy(doc)
    try:
        for op in ops:
            name, parts = op.get("op"), _pointer(str(op.get("path", "")))
            if not parts:
                raise PatchError(f"{name} on the document root is not supported")
            if name in ("add", "replace"):
                _put(out, parts, copy.deepcopy(op.get("value")), name, name == "add")
            elif name == "remove":
                _remove(out, parts)
            elif name in ("move", "copy"):
                src = _pointer(str(op.get("from", "")))
                value = _remove(out, src) if name == "move" else copy.deepcopy(_get(out, src, name))
                _put(out, parts, value, name, True)
            elif name == "test":
                if _get(out, parts, "test") != op.get("value"):
                    raise PatchError("testing value failed")
            else:
                raise PatchError(f"Unexpected kind: {name}")
    except PatchError as exc:
        raise PatchError(
            f"failure applying rfc6902 patches to talos machine config: {exc}"
        ) from None
    return out
