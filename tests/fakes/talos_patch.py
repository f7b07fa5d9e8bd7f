"""The stand-in talosctl's config patcher (`gen config --config-patch`, `machineconfig patch`).

Written from siderolabs/talos v1.13.9 pkg/machinery/config (configpatcher/load.go LoadPatches and
LoadPatch, apply.go Apply, strategic.go StrategicMerge, json6902.go, configloader/internal/decoder
delete.go and selector.go, container.go Documents, merge/merge.go and the types' Merge methods),
independently of Domum's merge: tests run the same upstream cases against both.
Standard library and PyYAML only (the stand-in runs as a script).
"""

from __future__ import annotations

import copy
import json
import os
import re
from typing import Any

import yaml

try:  # imported as tests.fakes.talos_patch by tests, as a top-level module by the stand-in
    from .talos_jsonpatch import PatchFailure, json6902
except ImportError:
    from talos_jsonpatch import PatchFailure, json6902  # type: ignore[no-redef]


class _Go12Loader(yaml.SafeLoader):
    """go-yaml reads YAML 1.2: only true/false are booleans."""


_Go12Loader.yaml_implicit_resolvers = {
    c: [r for r in rs if r[0] != "tag:yaml.org,2002:bool"]
    for c, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Go12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

# Per document kind, dotted paths ("*" = any list item) of the fields whose Go type changes the
# merge. "replace": `merge:"replace"`; "args": Args.Merge; "by:<key>": a Merge method matching
# list items by that key; "device": NetworkDeviceList.Merge; "swap:<key>": matched items replaced.
SPECIAL = {
    "v1alpha1": {
        "cluster.apiServer.auditPolicy": "replace",
        "cluster.network.podSubnets": "replace",
        "cluster.network.serviceSubnets": "replace",
        "machine.kubelet.extraArgs": "args",
        "cluster.apiServer.extraArgs": "args",
        "cluster.controllerManager.extraArgs": "args",
        "cluster.proxy.extraArgs": "args",
        "cluster.scheduler.extraArgs": "args",
        "cluster.etcd.extraArgs": "args",
        "machine.network.interfaces": "device",
        "machine.network.interfaces.*.vlans": "by:vlanId",
        "cluster.apiServer.admissionControl": "by:name",
    },
    "NetworkRuleConfig": {"ingress": "replace", "portSelector.ports": "replace"},
    "ExtensionServiceConfig": {"configFiles": "by:mountPath"},
    "ImageVerificationConfig": {"rules": "swap:image"},
}
# Go map fields, where deleting an absent key is "lookup failed" (elsewhere: a struct field).
MAP_FIELDS = re.compile(
    r"^machine\.(sysctls|sysfs|node(Labels|Annotations|Taints)|registries\.(mirrors|config)"
    r"|kubelet\.(extraArgs|extraConfig|credentialProviderConfig)|baseRuntimeSpecOverrides)(\..*)?$"
    r"|^cluster\.(extraManifestHeaders|(apiServer|controllerManager|proxy|scheduler|etcd)\.extraArgs"
    r"|apiServer\.auditPolicy|scheduler\.config|\w+\.resources\.(requests|limits))(\..*)?$"
)
LEGACY = "/v1alpha1"


def _ident(doc: dict[str, Any]) -> str:
    """strategic.go documentID: apiVersion/kind[/name]."""
    if "kind" not in doc:
        return LEGACY
    name = doc.get("name")
    return f"{doc.get('apiVersion', '')}/{doc['kind']}" + (f"/{name}" if name else "")


# ---------------------------------------------------------------- loading (load.go)
def _read_spec(spec: str, cwd: str) -> str:
    if spec.startswith("@"):
        name = spec[1:]
    elif not re.search(r"[\n ]", spec) and not spec.startswith(("[", "{")):
        name = spec  # LoadPatches: a bare file name
    else:
        return spec
    try:
        with open(os.path.join(cwd, name), encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise PatchFailure(f"open {name}: {(exc.strerror or str(exc)).lower()}") from None


def _collect_deletes(
    root: dict[str, Any], here: Any, trail: list[str], out: list[dict[str, Any]]
) -> str:
    """delete.go processNode. Returns "keep", "drop" (a delete) or "empty" (emptied by deletes)."""
    if isinstance(here, dict):
        for k in list(here):
            if k == "$patch" and here[k] == "delete":
                in_list = bool(trail) and trail[-1].startswith("[")
                if not in_list and any(t.startswith("[") for t in trail):
                    raise PatchFailure(f"cannot delete an inner key in '{'.'.join(trail)}'")
                out.append(_make_delete(root, trail, here if in_list else None))
                return "drop"
            if _collect_deletes(root, here[k], [*trail, str(k)], out) != "keep":
                here.pop(k)
                if len(here) == 0:
                    return "empty"
    elif isinstance(here, list):
        idx = 0
        while idx < len(here):
            if _collect_deletes(root, here[idx], [*trail, f"[{idx}]"], out) != "keep":
                here.pop(idx)
                if len(here) == 0:
                    return "empty"
            else:
                idx += 1
    return "keep"


def _make_delete(root: dict[str, Any], trail: list[str], item: Any) -> dict[str, Any]:
    api, kind = root.get("apiVersion") or "", root.get("kind") or ""
    if not trail:
        for need, got in (("apiVersion", api), ("kind", kind)):
            if not got:
                raise PatchFailure(f"missing {need} in document for which $patch: delete is used")
    if (api == "") != (kind == ""):
        raise PatchFailure(f"kind and apiVersion must be both set for path {'.'.join(trail)}")
    sel: dict[str, Any] = {"$delete": trail, "api": api, "kind": kind or "v1alpha1"}
    sel["name"] = root.get("name") or ""
    if item is not None:
        rest = [(k, v) for k, v in item.items() if k != "$patch"]
        if not rest:
            raise PatchFailure(f"no key:val found in sequence node for path {'.'.join(trail)}")
        k, v = rest[0]
        sel["match"] = (k, ("true" if v else "false") if isinstance(v, bool) else str(v))
    return sel


def _decode(text: str, with_deletes: bool) -> list[dict[str, Any]]:
    """configloader.NewFromBytes (decoder.go parse)."""
    try:
        raw = [d for d in yaml.load_all(text, Loader=_Go12Loader) if d is not None]
    except yaml.YAMLError as exc:
        raise PatchFailure(f"decode error: {exc}") from None
    result: list[dict[str, Any]] = []
    known: set[str] = set()
    for doc in raw:
        if not isinstance(doc, dict):
            raise PatchFailure("expected a YAML document")
        if with_deletes:
            found: list[dict[str, Any]] = []
            state = _collect_deletes(doc, doc, [], found)
            result.extend(found)
            if state != "keep" or all(k in ("version", "kind", "name") for k in doc):
                continue
        legacy = bool({"machine", "cluster", "debug", "persist"} & set(doc)) or (
            doc.get("apiVersion") == "v1alpha1" and not doc.get("kind")
        )
        if not legacy and (not doc.get("kind") or not doc.get("apiVersion")):
            raise PatchFailure("missing kind" if not doc.get("kind") else "missing apiVersion")
        key = f"{doc.get('apiVersion', '')}/{doc.get('kind', 'v1alpha1')}/{doc.get('name', '')}"
        if key in known:
            raise PatchFailure(f"duplicate document {key} is not allowed")
        known.add(key)
        for m in (doc.get("cluster") or {}).get("inlineManifests") or [] if legacy else []:
            if isinstance(m.get("contents"), str):  # ClusterInlineManifests.UnmarshalYAML
                m["contents"] = m["contents"].lstrip("\t\n\v\f\r")
        result.append(doc)
    return result


def load_patch(text: str) -> tuple[str, Any]:
    """load.go LoadPatch -> ("strategic", parts) or ("json", ops)."""
    try:
        parts = _decode(text, True)
    except PatchFailure as first:
        try:
            ops = json.loads(text)
        except ValueError:
            try:
                ops = yaml.load(text, Loader=_Go12Loader)
            except yaml.YAMLError:
                ops = None
            if not (isinstance(ops, list) and all(isinstance(o, dict) for o in ops)):
                if text.lstrip().startswith("["):
                    raise PatchFailure("invalid JSON Patch") from None
                raise first from None
        return "json", ops
    # container.go Documents: v1alpha1 deletes, v1alpha1, then everything else in order
    is_v1 = [
        ("$delete" in p and p["kind"] == "v1alpha1") or ("$delete" not in p and "kind" not in p)
        for p in parts
    ]
    ordered = [p for p, v in zip(parts, is_v1, strict=True) if v and "$delete" in p]
    ordered += [p for p, v in zip(parts, is_v1, strict=True) if v and "$delete" not in p]
    ordered += [p for p, v in zip(parts, is_v1, strict=True) if not v]
    return "strategic", ordered


def load_patches(specs: list[str], cwd: str = ".") -> list[tuple[str, Any]]:
    return _joined([load_patch(_read_spec(spec, cwd)) for spec in specs])


def _joined(patches: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """LoadPatches: JSON Patches that follow each other become one."""
    out: list[tuple[str, Any]] = []
    for kind, body in patches:
        if kind == "json" and out and out[-1][0] == "json":
            out[-1] = ("json", out[-1][1] + body)
        else:
            out.append((kind, body))
    return out


def patch_kinds(specs: list[str], cwd: str = ".") -> list[str]:
    return [f"json:{len(b)}" if k == "json" else k for k, b in load_patches(specs, cwd)]


# ---------------------------------------------------------------- merging (merge.go)
def _rule(kind: str, dotted: str) -> str:
    for pattern, rule in SPECIAL.get(kind, {}).items():
        if re.fullmatch(re.escape(pattern).replace(r"\*", r"[^.]+"), dotted):
            return rule
    return ""


def _merge(into: Any, src: Any, kind: str, dotted: str) -> Any:
    rule = _rule(kind, dotted)
    if src is None:
        return into
    if rule.startswith(("by:", "swap:", "device")):
        items = list(into or [])
        for new in src:
            if rule == "device":
                if new.get("interface"):
                    hit = [i for i, d in enumerate(items) if d.get("interface") == new["interface"]]
                elif new.get("deviceSelector") is not None:
                    hit = [
                        i
                        for i, d in enumerate(items)
                        if d.get("deviceSelector") == new["deviceSelector"]
                    ]
                else:
                    hit = []
            else:
                key = rule.split(":", 1)[1]
                zero = 0 if key == "vlanId" else ""
                hit = [i for i, d in enumerate(items) if d.get(key, zero) == new.get(key, zero)]
            if not hit:
                items.append(new)
            elif rule.startswith("swap:"):
                items[hit[0]] = new
            else:
                items[hit[0]] = _merge(items[hit[0]], new, kind, dotted + ".*")
        return items
    if into is None or rule == "replace":
        return src
    if type(into) is not type(src) and (
        isinstance(into, (dict, list)) or isinstance(src, (dict, list))
    ):
        raise PatchFailure(
            f"merge type mismatch left {type(into).__name__} right {type(src).__name__} at {dotted}"
        )
    if rule == "args":
        return dict(into, **src)
    if isinstance(src, dict):
        for k, v in src.items():
            into[k] = _merge(into.get(k), v, kind, f"{dotted}.{k}" if dotted else str(k))
        return into
    if isinstance(src, list):
        return into + src
    if isinstance(src, bool) or src not in ("", 0):
        return src  # scalars: zero values do not overwrite, bools always do
    return into


def _min_size(into: dict[str, Any], src: dict[str, Any]) -> None:
    # block/byte_size.go ByteSize.Merge copies the patch's minSize, even an absent one
    if into.get("kind") in (
        "VolumeConfig",
        "UserVolumeConfig",
        "RawVolumeConfig",
        "SwapVolumeConfig",
    ):
        spec = dict(into.get("provisioning") or {})
        spec.pop("minSize", None)
        if (src.get("provisioning") or {}).get("minSize") is not None:
            spec["minSize"] = src["provisioning"]["minSize"]
        if spec:
            into["provisioning"] = spec
        else:
            into.pop("provisioning", None)


def _delete_in(doc: dict[str, Any], sel: dict[str, Any]) -> None:
    """selector.go deleteForPath / deleteStructFrom."""
    trail = sel["$delete"]
    cur: Any = doc
    for n, step in enumerate(trail):
        final = n + 1 == len(trail)
        if isinstance(cur, list):
            if not final:
                raise PatchFailure("searching for complex paths in slices is not supported")
            key, want = sel["match"]
            for i, item in enumerate(cur):
                got = item.get(key) if isinstance(item, dict) else None
                if (
                    isinstance(got, str) and got == want
                ):  # reflect String() of non-strings never matches
                    del cur[i]
                    return
            raise PatchFailure("lookup failed")
        if not isinstance(cur, dict):
            raise PatchFailure("lookup failed")
        nxt = cur.get(step)
        if nxt is None:
            parent = ".".join(trail[:n])
            if final and not (sel["kind"] == "v1alpha1" and MAP_FIELDS.match(parent)):
                return  # struct field already zero
            raise PatchFailure("lookup failed")
        if final:
            del cur[step]
            return
        cur = nxt


def _apply_delete(doc: dict[str, Any], sel: dict[str, Any]) -> bool:
    where = ".".join(sel["$delete"])
    label = f"{sel['api']}/{sel['kind']}"
    if not sel["$delete"]:
        if sel["kind"] == "v1alpha1":
            raise PatchFailure(
                f"patch delete: path '' in document '{label}': can't delete the root of the legacy document"
            )
        return True
    try:
        _delete_in(doc, sel)
    except PatchFailure as exc:
        msg = f"failed to delete path '{where}': {exc}"
        if sel["name"]:
            raise PatchFailure(f"named patch delete: document {label}: {msg}") from None
        raise PatchFailure(f"patch delete: path '{where}' in document '{label}': {msg}") from None
    return False


def strategic(docs: list[dict[str, Any]], parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """strategic.go StrategicMerge."""
    left = copy.deepcopy(docs)
    by_id = {_ident(d): d for d in left}
    for part in copy.deepcopy(parts):
        if "$delete" in part:
            ident = (
                LEGACY
                if part["kind"] == "v1alpha1"
                else f"{part['api']}/{part['kind']}" + (f"/{part['name']}" if part["name"] else "")
            )
            target = by_id.get(ident)
            if target is not None and _apply_delete(target, part):
                left = [d for d in left if d is not target]
                by_id.pop(ident)
            continue  # a delete of an absent document stays unapplied
        target = by_id.get(_ident(part))
        if target is None:
            left.append(part)
        else:
            _merge(target, part, part.get("kind", "v1alpha1"), "")
            _min_size(target, part)
    return left


# ---------------------------------------------------------------- apply.go Apply
def apply(docs: list[dict[str, Any]], patches: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    for kind, body in patches:
        if kind == "json":
            if len(docs) != 1:
                raise PatchFailure(
                    "JSON6902 patches are not supported for multi-document machine configuration"
                )
            docs = [json6902(docs[0], body)]
        else:
            docs = strategic(docs, body)
    return docs


def apply_specs(
    docs: list[dict[str, Any]], specs: list[str], cwd: str = "."
) -> list[dict[str, Any]]:
    """--config-patch / --patch values (`@file`, a bare file name or inline) applied in order."""
    return apply(docs, load_patches(specs, cwd))


def patch_config(base: str, patch_texts: list[str]) -> list[dict[str, Any]]:
    """A config text patched with patch texts (for tests)."""
    return apply(_decode(base, False), _joined([load_patch(t) for t in patch_texts]))
