"""Chart values as Helm checks them, on the small charts of tests/data/charts (any clone).

Expected results come from Helm's documented rules (helm/helm v4.2.4 coalesce.go: null deletes
a default, maps merge, other types replace; a subchart's values under its alias, `global`
handed down) and JSON Schema, written out by hand here, not computed by the code under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from domum_tasks.flux.validate.chartstore import ChartStore
from domum_tasks.flux.validate.chartvalues import check_chart_values
from domum_tasks.flux.validate.core import Settings, World
from domum_tasks.flux.validate.helmvalues import coalesce, disabled_deps, merge_maps
from domum_tasks.flux.validate.model import Finding, Obj
from domum_tasks.flux.validate.valuekeys import scan_values
from domum_tasks.flux.validate.valueschema import draft_of
from tests.flux_tree import CHARTS

REPO = "https://charts.example.org"


def _hr(chart: str, version: str, values: dict[str, Any] | None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": chart, "namespace": "apps"},
        "spec": {
            "chart": {
                "spec": {
                    "chart": chart,
                    "version": version,
                    "sourceRef": {"kind": "HelmRepository", "name": "repo"},
                }
            },
            **({"values": values} if values is not None else {}),
            **spec,
        },
    }


def _check(*docs: dict[str, Any], dirs: list[Path] | None = None) -> list[Finding]:
    settings = Settings(Path("/repo"), Path("/repo/cluster"), "v1.35.4")
    settings.chart_dirs = [CHARTS] if dirs is None else dirs
    world = World("cluster", settings)
    repo = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": "repo", "namespace": "apps"},
        "spec": {"url": REPO},
    }
    world.objects = [Obj(d, "cluster/apps/hr.yaml") for d in (repo, *docs)]
    return list(check_chart_values(world))


def _messages(found: list[Finding]) -> list[str]:
    assert all(f.file == "cluster/apps/hr.yaml" for f in found)
    return [f.message for f in found]


# --- Helm's coalescing -------------------------------------------------------------------------


def test_null_deletes_a_default_maps_merge_lists_replace() -> None:
    chart = ChartStore([CHARTS]).get("plain", "2.0.0")
    assert chart is not None
    user = {
        "image": {"tag": "1.0", "repository": None},
        "persistence": None,
        "podLabels": {"a": "b"},
    }
    got = coalesce(chart, user, lambda c, d: True)
    assert got["image"] == {"tag": "1.0"}  # repository deleted by null, tag replaced
    assert "persistence" not in got  # a whole default map deleted
    assert got["podLabels"] == {"a": "b"}
    assert got["config"] == {"server": {"port": 80}}
    assert "resources" not in got  # a null default is dropped
    assert got["script"] == "notakey: here\n"


def test_subchart_values_under_alias_with_globals() -> None:
    chart = ChartStore([CHARTS]).get("parent", "3.0.0")
    assert chart is not None
    off = disabled_deps(chart, {})
    assert off == {(id(chart), "other")}  # condition other.enabled is false in the defaults
    got = coalesce(chart, {"kid": {"replicas": 3}}, lambda c, d: (id(c), d.key) not in off)
    assert got["kid"] == {
        "enabled": True,
        "extra": "parent-set",
        "replicas": 3,
        "service": {"port": 80},
        "global": {"domain": "example.org", "color": "blue"},
    }
    assert got["other"] == {"enabled": False}  # disabled: the subchart's defaults stay out
    assert disabled_deps(chart, {"other": {"enabled": True}, "kid": {"enabled": False}}) == {
        (id(chart), "kid")
    }


def test_flux_merges_values_from_then_values() -> None:
    assert merge_maps({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": 3}, "l": [2]}) == {
        "a": {"b": 3, "c": 2},
        "l": [2],
    }


# --- what values.yaml documents ----------------------------------------------------------------


def test_scan_values_reads_commented_keys_and_free_form_maps() -> None:
    doc = scan_values((CHARTS / "plain/2.0.0/values.yaml").read_text())
    assert doc.commented[("image",)] == {"pullPolicy"}
    assert doc.free == {("config",)}
    assert ("script",) not in doc.commented  # inside a block scalar: not a key


@pytest.mark.parametrize(
    ("url", "draft"),
    [
        ("http://json-schema.org/draft-07/schema#", "7"),
        ("https://json-schema.org/draft-07/schema", "7"),
        ("http://json-schema.org/schema#", "2020-12"),
        ("https://json-schema.org/draft/2019-09/schema", "2019-09"),
        (None, "2020-12"),
    ],
)
def test_draft_as_santhosh_tekuri_jsonschema_reads_it(url: str | None, draft: str) -> None:
    assert draft_of({"$schema": url} if url else {}) == draft


# --- the check ---------------------------------------------------------------------------------


def test_schema_with_additional_properties_false() -> None:
    values = {"replicas": 0, "ports": {"web": {"redirections": {"to": "websecure"}}}, "logs": {}}
    found = _check(_hr("strict", "1.0.0", values))
    assert all(f.obj == "HelmRelease/apps/strict" and f.severity == "error" for f in found)
    assert _messages(found) == [
        "logs: 'logs' is not allowed under the top level (additionalProperties: false): "
        "did you mean log? [schema of chart strict 1.0.0]",
        "ports.web.redirections: 'redirections' is not allowed under ports.web "
        "(additionalProperties: false): ports.web allows: http, port [schema of chart strict 1.0.0]",
        "replicas: 0 is less than the minimum of 1 [schema of chart strict 1.0.0]",
    ]


def test_valid_values_and_defaults_pass_the_schema() -> None:
    found = _check(_hr("strict", "1.0.0", {"ports": {"web": {"http": {"redirections": {}}}}}))
    assert found == []


def test_misspelt_key_in_a_chart_without_schema() -> None:
    values = {
        "image": {"tga": "1.0", "pullPolicy": "Always"},  # pullPolicy: documented in a comment
        "persistance": {"enabled": True},
        "podLabels": {"anything": "goes"},  # an empty map in the defaults
        "config": {"database": {"url": "x"}},  # documented as an INI file
        "resources": {"limits": {}},  # a null default
    }
    assert _messages(_check(_hr("plain", "2.0.0", values))) == [
        "image.tga: values key image.tga is not a value of chart plain 2.0.0 (Helm ignores it "
        "silently): did you mean image.tag?",
        "persistance: values key persistance is not a value of chart plain 2.0.0 (Helm ignores it "
        "silently): did you mean persistence?",
    ]


def test_subchart_schema_and_keys() -> None:
    values = {"kid": {"replicas": "two", "servce": {"port": 81}}, "other": {"size": "big"}}
    assert _messages(_check(_hr("parent", "3.0.0", values))) == [
        "kid.replicas: 'two' is not of type 'integer' [schema of chart child 1.0.0]",
        "kid.servce: values key kid.servce is not a value of chart child 1.0.0 (Helm ignores it "
        "silently): did you mean kid.service?",
    ]  # `other` is disabled: Helm renders and validates none of it


def test_global_reaches_the_subchart_schema() -> None:
    found = _check(_hr("parent", "3.0.0", {"global": {"domain": None}}))
    assert _messages(found) == [
        "kid.global: 'domain' is a required property [schema of chart child 1.0.0]"
    ]
    found = _check(_hr("parent", "3.0.0", {"global": {"colour": "red"}}))
    assert _messages(found) == [
        "global.colour: values key global.colour is not a value of chart parent 3.0.0 (Helm "
        "ignores it silently): did you mean global.color?"
    ]


def test_remote_ref_is_read_from_the_chart_directory() -> None:
    found = _check(_hr("remote", "1.0.0", {"name": "ab"}))
    assert _messages(found) == ["name: 'ab' is too short [schema of chart remote 1.0.0]"]


def test_values_from_a_configmap_in_the_tree() -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "strict-values", "namespace": "apps"},
        "data": {"values.yaml": "replicas: -1\nlog:\n  level: LOUD\n"},
    }
    hr = _hr(
        "strict",
        "1.0.0",
        {"replicas": 2},
        valuesFrom=[{"kind": "ConfigMap", "name": "strict-values"}],
    )
    assert _messages(_check(cm, hr)) == [
        "log.level: 'LOUD' is not one of ['DEBUG', 'INFO', 'ERROR'] [schema of chart strict 1.0.0]"
    ]  # spec.values wins for replicas


def test_disable_schema_validation_on_both_actions() -> None:
    off = {"disableSchemaValidation": True}
    assert _check(_hr("strict", "1.0.0", {"replicas": 0}, install=off, upgrade=off)) == []
    assert len(_check(_hr("strict", "1.0.0", {"replicas": 0}, install=off))) == 1


@pytest.mark.parametrize("ci", ["", "true"])
def test_chart_version_not_available(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    (f,) = _check(_hr("strict", "1.0.1", {}))
    assert f.severity == ("error" if ci else "warning")
    assert f.message == (
        f"chart strict 1.0.1 is not in {CHARTS} (it has 1.0.0); values not checked: run `inv "
        "tools.install` (or set DOMUM_CHARTS) [chart from HelmRepository apps/repo]"
    )
    (f,) = _check(_hr("strict", "1.x", {}))
    assert f.message.startswith("version '1.x' is a range, not a pinned version: pin an exact")


def test_no_charts_anywhere_is_one_line(tmp_path: Path) -> None:
    (f,) = _check(_hr("strict", "1.0.0", {}), _hr("plain", "2.0.0", {}), dirs=[tmp_path])
    assert (f.file, f.obj, f.check) == ("cluster", "-", "values")
    assert f.message == (
        "chart values not checked (2 charts: plain 2.0.0, strict 1.0.0): run `inv tools.install` "
        "(or set DOMUM_CHARTS)"
    )


def test_leading_v_names_the_same_version() -> None:
    assert _check(_hr("cert-manager", "1.21.1", {"crds": {"enabled": True}})) == []


def test_relative_ref_without_id_fails_as_in_helm(tmp_path: Path) -> None:
    """Helm adds the schema as file:///values.schema.json: `schemas/x.json` is then read from the
    controller's filesystem, where it is not."""
    chart = tmp_path / "rel" / "1.0.0"
    (chart / "schemas").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("name: rel\nversion: 1.0.0\n")
    (chart / "values.yaml").write_text("port: 80\n")
    (chart / "values.schema.json").write_text(
        '{"properties": {"port": {"$ref": "schemas/x.json"}}}'
    )
    (chart / "schemas" / "x.json").write_text('{"type": "integer"}')
    (f,) = _check(_hr("rel", "1.0.0", {}), dirs=[tmp_path])
    assert f.severity == "error" and f.message.startswith(
        "values.schema.json of chart rel 1.0.0 $refs file:///schemas/x.json, which Helm cannot load"
    )
