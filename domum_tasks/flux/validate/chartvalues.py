"""Chart values: what Helm checks when helm-controller installs a HelmRelease, offline.

For each HelmRelease: the chart and version it pins (spec.chart.spec with a HelmRepository,
or spec.chartRef to an OCIRepository or HelmChart), read from the chart directories
($DOMUM_CHARTS, then the `inv tools.install` cache). Its values (valuesFrom in the tree, then
spec.values) are coalesced with the chart's defaults as Helm does (helmvalues.py), validated
against values.schema.json of the chart and of each enabled subchart (valueschema.py), and their
keys held against the defaults (valuekeys.py). A chart that is in neither place is one line
naming `inv tools.install`: a warning, an error under CI (CI=true).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ... import settings as env
from .chartstore import Chart, ChartStore, Dependency, jsonable
from .core import Settings, World
from .crossref import sources
from .helmvalues import coalesce, disabled_deps, merge_maps, values_from
from .model import Finding, Obj, Severity
from .valuekeys import SchemaView, unknown_keys
from .valueschema import Unresolvable, compile_schema, schema_errors, view_at

# A semver range, not one version: `*`, `^1.2`, `~1`, `>=1 <2`, `1.x`, `1.2 || 1.3`.
_RANGE = re.compile(r"[\^~<>=*|, ]|(?:^|\.)[xX](?:\.|$)")


@dataclass(frozen=True)
class ChartPin:
    name: str
    version: str
    source: str  # for messages: "HelmRepository traefik/traefik"


def chart_pin(hr: Obj, src: dict[tuple[str, str, str], Obj]) -> ChartPin | str | None:
    """The chart and version a HelmRelease installs; a str says why it cannot be known
    offline; None: its source is not in the tree (crossref reports that)."""
    spec = (hr.spec.get("chart") or {}).get("spec") or {}
    if spec:
        ref = spec.get("sourceRef") or {}
        kind, ns = str(ref.get("kind", "")), str(ref.get("namespace") or hr.namespace or "")
        if kind != "HelmRepository":
            return f"its chart comes from a {kind} path: values not checked"
        name = str(spec.get("chart", "")).rstrip("/").rsplit("/", 1)[-1]
        return ChartPin(name, str(spec.get("version") or "*"), f"{kind} {ns}/{ref.get('name')}")
    ref = hr.spec.get("chartRef") or {}
    kind, ns = str(ref.get("kind", "")), str(ref.get("namespace") or hr.namespace or "")
    obj = src.get((kind, ns, str(ref.get("name", ""))))
    if obj is None:
        return None
    where = f"{kind} {ns}/{obj.name}"
    if kind == "OCIRepository":
        name = str(obj.spec.get("url", "")).rstrip("/").rsplit("/", 1)[-1]
        tag = (obj.spec.get("ref") or {}).get("tag")
        semver = (obj.spec.get("ref") or {}).get("semver")
        return ChartPin(name, str(tag or semver or "*"), where)
    if kind == "HelmChart":
        return ChartPin(str(obj.spec.get("chart", "")), str(obj.spec.get("version") or "*"), where)
    return f"its chart comes from a {kind}: values not checked"


class _Run:
    """What one validation run keeps: the charts, their compiled schemas, each release's
    findings (two overlays usually render the same HelmRelease)."""

    def __init__(self, s: Settings) -> None:
        self.store = ChartStore(s.chart_dirs)
        self.compiled: dict[int, Any] = {}
        self.results: dict[str, list[tuple[str, str, str]]] = {}

    def schema(self, chart: Chart) -> Any:
        if id(chart) not in self.compiled:
            self.compiled[id(chart)] = compile_schema(chart)
        return self.compiled[id(chart)]

    def view(self, chart: Chart, path: tuple[str, ...]) -> SchemaView | None:
        compiled = self.schema(chart)
        return view_at(compiled, path) if compiled else None


def _run(s: Settings) -> _Run:
    run = s.cache.get("chartvalues")
    if run is None:
        run = s.cache["chartvalues"] = _Run(s)
    return run


def check_chart_values(world: World) -> Iterator[Finding]:
    s = world.settings
    if not s.chart_dirs:
        return
    run = _run(s)
    src = sources(world)
    missing: list[tuple[Obj, ChartPin]] = []
    for hr in world.objects:
        if hr.kind != "HelmRelease" or hr.group != "helm.toolkit.fluxcd.io":
            continue
        pin = chart_pin(hr, src)
        if pin is None:
            continue
        if isinstance(pin, str):
            yield hr.finding("values", pin, "warning")
            continue
        chart = None if _RANGE.search(pin.version) else run.store.get(pin.name, pin.version)
        if chart is None:
            missing.append((hr, pin))
            continue
        for check, message, severity in _release(run, world, hr, chart):
            yield hr.finding(check, message, "error" if severity == "error" else "warning")
    yield from _missing(s, run.store, missing)


def _missing(
    s: Settings, store: ChartStore, missing: list[tuple[Obj, ChartPin]]
) -> Iterator[Finding]:
    severity: Severity = "error" if env.in_ci() else "warning"
    if missing and not store.has_any():
        names = sorted({f"{p.name} {p.version}" for _, p in missing})
        yield Finding(
            s.rel(s.tree),
            "-",
            "values",
            f"chart values not checked ({len(names)} charts: {', '.join(names[:5])}"
            f"{', ...' if len(names) > 5 else ''}): run `inv tools.install` (or set DOMUM_CHARTS)",
            severity,
        )
        return
    where = ", ".join(str(d) for d in s.chart_dirs)
    for hr, pin in missing:
        if _RANGE.search(pin.version):
            why = f"version {pin.version!r} is a range, not a pinned version: pin an exact version"
        else:
            have = store.versions(pin.name)
            why = f"chart {pin.name} {pin.version} is not in {where}" + (
                f" (it has {', '.join(have)})" if have else ""
            )
        yield hr.finding(
            "values",
            f"{why}; values not checked: run `inv tools.install` (or set DOMUM_CHARTS) "
            f"[chart from {pin.source}]",
            severity,
        )


def _user_values(world: World, hr: Obj) -> tuple[dict[str, Any], list[str]]:
    def lookup(kind: str, name: str) -> dict[str, Any] | None:
        found = world.find(kind, hr.namespace, name)
        return found[0].doc if found else None

    base, notes = values_from(list(hr.spec.get("valuesFrom") or []), lookup)
    inline = hr.spec.get("values")
    return merge_maps(base, jsonable(inline) if isinstance(inline, dict) else {}), notes


def _release(run: _Run, world: World, hr: Obj, chart: Chart) -> list[tuple[str, str, str]]:
    user, notes = _user_values(world, hr)
    skip = all(
        bool((hr.spec.get(action) or {}).get("disableSchemaValidation"))
        for action in ("install", "upgrade")
    )
    key = json.dumps([str(chart.path), user, skip, notes], sort_keys=True, default=str)
    if key not in run.results:
        run.results[key] = _compute(run, chart, user, skip, notes)
    return run.results[key]


def _compute(
    run: _Run, chart: Chart, user: dict[str, Any], skip_schema: bool, notes: list[str]
) -> list[tuple[str, str, str]]:
    out = [("values", n, "warning") for n in notes]
    off = disabled_deps(chart, user)

    def on(parent: Chart, dep: Dependency) -> bool:
        return (id(parent), dep.key) not in off

    if not skip_schema:
        values = coalesce(chart, user, on)
        out += _schemas(run, chart, values, "", on)
    for path, message in unknown_keys(chart, user, lambda c, k: (id(c), k) not in off, run.view):
        out.append(("values", f"{path}: {message}", "error"))
    return out


def _schemas(
    run: _Run, chart: Chart, values: dict[str, Any], prefix: str, on: Any
) -> list[tuple[str, str, str]]:
    """ValidateAgainstSchema: the chart's schema on its values, then each enabled subchart's
    on the values under its key (helm/helm v4.2.4 pkg/chart/common/util/jsonschema.go)."""
    out: list[tuple[str, str, str]] = []
    compiled = run.schema(chart)
    if compiled:
        try:
            errors = list(schema_errors(compiled, values))
        except Exception as exc:  # a $ref that cannot be resolved
            out.append(_unresolved(chart, exc))
            errors = []
        for path, msg in errors[:10]:
            out.append(
                ("values", f"{prefix}{path}: {msg} [schema of chart {chart.label()}]", "error")
            )
        if len(errors) > 10:
            out.append(("values", f"... and {len(errors) - 10} more schema errors", "error"))
    for dep in chart.deps:
        sub = values.get(dep.key)
        if on(chart, dep) and isinstance(sub, dict):
            out += _schemas(run, dep.chart, sub, f"{prefix}{dep.key}.", on)
    return out


def _unresolved(chart: Chart, exc: BaseException) -> tuple[str, str, str]:
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, Unresolvable):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, Unresolvable):
        return (
            "values",
            f"values.schema.json of chart {chart.label()} $refs {cause.ref}, which Helm "
            "cannot load either (a relative $ref without an $id resolves to the controller's "
            "filesystem)",
            "error",
        )
    return (
        "values",
        f"values.schema.json of chart {chart.label()} $refs a document that is not in the "
        f"chart directory (Helm fetches it at install time); values not schema-checked: {exc}",
        "warning",
    )
