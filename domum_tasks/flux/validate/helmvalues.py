"""The values Helm renders a HelmRelease with: Flux's merge of valuesFrom and values, then Helm's
coalescing with the chart's defaults and its enabled subcharts.

Sources (read, not copied):
  - helm/helm v4.2.4 pkg/chart/common/util/coalesce.go: CoalesceValues, coalesceValues,
    coalesceDeps, coalesceGlobals, coalesceTablesFullKey, childChartMergeTrue, cleanNilValues.
    Maps merge, every other type replaces; a user `null` deletes the chart's default key;
    nulls in the defaults are dropped; a subchart's values live under its name (or alias), and
    the parent's `global` is merged into each subchart's.
  - helm/helm v4.2.4 pkg/chart/v2/util/dependencies.go: processDependencyEnabled (all
    subcharts are coalesced, then `tags:` and each dependency's `condition` paths, the first that
    is a bool winning, drop the disabled ones before the values are coalesced again and
    validated). import-values are not applied here.
  - fluxcd/pkg chartutil ChartValuesFromReferences and transform.MergeMaps (helm-controller):
    each valuesFrom document in order, then spec.values, merged map by map.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

import yaml

from .chartstore import Chart, Dependency, jsonable

Values = dict[str, Any]


def merge_maps(a: Values, b: Values) -> Values:
    """fluxcd/pkg transform.MergeMaps: b wins; maps merge recursively."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_maps(out[k], v)
        else:
            out[k] = v
    return out


def _set_path(values: Values, path: str, value: Any) -> None:
    keys = [k for k in path.split(".") if k]
    node = values
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    if keys:
        node[keys[-1]] = value


def values_from(
    refs: list[Any], lookup: Callable[[str, str], dict[str, Any] | None]
) -> tuple[Values, list[str]]:
    """(merged values of the references found in the tree, notes on the ones that are not
    readable: SOPS-encrypted). `lookup(kind, name)` finds the ConfigMap/Secret."""
    result: Values = {}
    notes: list[str] = []
    for ref in refs:
        if not isinstance(ref, dict):
            continue
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        obj = lookup(kind, name)
        if obj is None:  # a missing reference is crossref's finding
            continue
        if "sops" in obj:
            notes.append(f"{kind}/{name} is SOPS-encrypted: its values are not part of the check")
            continue
        key = str(ref.get("valuesKey") or "values.yaml")
        data = dict(obj.get("data") or {})
        text: str | None = None
        if kind == "Secret":
            string_data = obj.get("stringData") or {}
            if key in string_data:
                text = str(string_data[key])
            elif key in data:
                text = base64.b64decode(str(data[key])).decode("utf-8", "replace")
        elif key in data:
            text = str(data[key])
        if text is None:
            continue
        if ref.get("targetPath"):
            _set_path(result, str(ref["targetPath"]), text)
            continue
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            notes.append(f"{kind}/{name} key {key} is not YAML")
            continue
        if isinstance(doc, dict):
            result = merge_maps(result, jsonable(doc))
    return result, notes


def _clean_nils(m: Values) -> None:
    for key in list(m):
        if m[key] is None:
            del m[key]
        elif isinstance(m[key], dict):
            _clean_nils(m[key])


def _tables(dst: Values, src: Values, merge: bool) -> Values:
    """coalesceTablesFullKey: dst (the user's) wins over src (the chart's)."""
    non_nil = {k for k, v in src.items() if v is not None}
    for key, val in dst.items():
        if val is None:
            src[key] = None
    for key, val in src.items():
        if key in dst and not merge and dst[key] is None and key in non_nil:
            del dst[key]
        elif key not in dst:
            dst[key] = val
        elif isinstance(val, dict) and isinstance(dst[key], dict):
            _tables(dst[key], val, merge)
    return dst


def _values(chart: Chart, v: Values) -> None:
    """coalesceValues: the chart's defaults under the user's values."""
    dep_keys = {d.key for d in chart.deps}
    for key, val in copy.deepcopy(chart.values).items():
        if key in v:
            value = v[key]
            if value is None:
                del v[key]
            elif isinstance(value, dict) and isinstance(val, dict):
                merge = key in dep_keys  # childChartMergeTrue
                if not merge:
                    _clean_nils(val)
                _tables(value, val, merge)
        elif val is not None:
            if isinstance(val, dict):
                _clean_nils(val)
            v[key] = val


def _globals(dest: Values, src: Values) -> None:
    dg, sg = dest.get("global", {}), src.get("global", {})
    if not isinstance(dg, dict) or not isinstance(sg, dict):
        return
    for key, val in sg.items():
        if isinstance(val, dict):
            vv = dict(val)
            if key not in dg:
                dg[key] = vv
            elif isinstance(dg[key], dict):
                _tables(vv, dg[key], True)
                dg[key] = vv
        elif not isinstance(dg.get(key), dict):
            dg[key] = val
    dest["global"] = dg


def coalesce(chart: Chart, values: Values, enabled: Callable[[Chart, Dependency], bool]) -> Values:
    """Helm's CoalesceValues over the subcharts `enabled` keeps."""
    v = copy.deepcopy(values)
    _values(chart, v)
    for dep in chart.deps:
        if not enabled(chart, dep):
            continue
        if dep.key not in v:
            v[dep.key] = {}
        if not isinstance(v[dep.key], dict):
            continue  # Helm fails "type mismatch on <dep>"; the schema check reports the type
        sub = v[dep.key]
        _globals(sub, v)
        v[dep.key] = coalesce(dep.chart, sub, enabled)
    return v


def _path_value(values: Values, path: str) -> Any:
    node: Any = values
    for k in path.split("."):
        if not isinstance(node, dict) or k not in node:
            return None
        node = node[k]
    return node


def disabled_deps(chart: Chart, user: Values) -> set[tuple[int, str]]:
    """(id of the parent chart, dependency key) of each subchart Helm leaves out."""
    cvals = coalesce(chart, user, lambda c, d: True)
    off: set[tuple[int, str]] = set()
    raw_tags = cvals.get("tags")
    tags: dict[str, Any] = raw_tags if isinstance(raw_tags, dict) else {}

    def walk(ch: Chart, prefix: str) -> None:
        for dep in ch.deps:
            on = True
            flags = [tags[t] for t in dep.tags if isinstance(tags.get(t), bool)]
            if flags and not any(flags):
                on = False
            elif any(flags):
                on = True
            for cond in (c.strip() for c in dep.condition.split(",")):
                value = _path_value(cvals, prefix + cond) if cond else None
                if isinstance(value, bool):
                    on = value
                    break
            if not on:
                off.add((id(ch), dep.key))
            else:
                walk(dep.chart, f"{prefix}{dep.key}.")

    walk(chart, "")
    return off
