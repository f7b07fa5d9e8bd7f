"""The merged machine config: gen config + Domum's patches, judged by Talos v1.13's rules, offline
(domum_tasks/talos/genconfig/{merged,rules}.py) and by the talosctl stand-in (tests/fakes/talos_rules.py).

The corpus in tests/data/talos_merged/ holds whole merged configs, one broken rule per file; its
first line says `# expect: valid` or `# expect: <part of the message>`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context, Exit

from domum_tasks.inventory.loader import load, load_with_findings
from domum_tasks.talos import yaml12
from domum_tasks.talos.genconfig import merged, patches, rules
from domum_tasks.talos.genconfig.checks import check_talos
from tests.conftest import LOOPBACK_INVENTORY, REPO

CORPUS = Path(__file__).parent / "data" / "talos_merged"
CASES = sorted(CORPUS.glob("*.yaml"))


def expectation(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    return first.removeprefix("# expect: ")


def test_corpus_covers_every_kind_domum_writes() -> None:
    kinds = {
        "HostnameConfig",
        "Layer2VIPConfig",
        "LinkAliasConfig",
        "LinkConfig",
        "ResolverConfig",
        "TimeSyncConfig",
        "WatchdogTimerConfig",
    }
    assert kinds <= set(rules.KIND_RULES)
    broken = [p.stem for p in CASES if expectation(p) != "valid"]
    for prefix in ("hostname", "vip", "alias", "link", "route", "resolver", "timesync", "watchdog"):
        assert any(b.startswith(prefix) for b in broken), prefix
    assert len(broken) >= 20 and len(CASES) - len(broken) >= 2


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_domum_rules_on_the_corpus(path: Path) -> None:
    problems = rules.validate(yaml12.load_all(path.read_text()))
    want = expectation(path)
    if want == "valid":
        assert problems == []
    else:  # exactly the one rule the case breaks
        assert len(problems) == 1 and want in problems[0], problems


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_stand_in_validate_on_the_corpus(path: Path, fake_cli: Any, tmp_path: Path) -> None:
    proc = subprocess.run(
        ["talosctl", "validate", "--config", str(path), "--mode", "metal"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    want = expectation(path)
    if want == "valid":
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 1 and want in proc.stderr, proc.stderr


def test_stand_in_apply_config_rejects_what_the_node_rejects(fake_cli: Any, tmp_path: Path) -> None:
    bad = CORPUS / "hostname-auto-beside-hostname.yaml"
    proc = subprocess.run(
        ["talosctl", "apply-config", "--insecure", "--nodes", "127.0.0.90", "--file", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "InvalidArgument desc = configuration validation failed" in proc.stderr
    assert "'auto' and 'hostname' cannot be set at the same time" in proc.stderr
    assert not (fake_cli.state.get("applied") or {})  # nothing was applied
    good = CORPUS / "valid-controlplane.yaml"
    subprocess.run(
        ["talosctl", "apply-config", "--insecure", "--nodes", "127.0.0.90", "--file", str(good)],
        check=True,
        capture_output=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert "127.0.0.90" in fake_cli.state["applied"]


# --- merging as talosctl does ------------------------------------------------------------------


def test_a_patch_file_appends_lists_replaces_subnets_and_deletes() -> None:
    """talosctl's configpatcher (the upstream cases: test_talos_configpatcher_upstream.py)."""
    base = [
        {
            "version": "v1alpha1",
            "machine": {"certSANs": ["a"], "kubelet": {"image": "k"}},
            "cluster": {"network": {"podSubnets": ["10.244.0.0/16"]}},
        }
    ]
    patch = (
        "machine:\n  certSANs: [b]\n  kubelet:\n    $patch: delete\n"
        "cluster:\n  network:\n    podSubnets: [10.42.0.0/16]\n"
    )
    assert merged.merge_documents(base, patch) == [
        {
            "version": "v1alpha1",
            "machine": {"certSANs": ["a", "b"]},
            "cluster": {"network": {"podSubnets": ["10.42.0.0/16"]}},
        }
    ]


def test_typed_documents_merge_by_kind_and_name() -> None:
    docs = [
        {"version": "v1alpha1"},
        {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "stable"},
        {"apiVersion": "v1alpha1", "kind": "LinkConfig", "name": "a", "up": True},
    ]
    out = merged.merge_documents(
        docs,
        "apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: h\n---\n"
        "apiVersion: v1alpha1\nkind: LinkConfig\nname: b\n---\n"
        "apiVersion: v1alpha1\nkind: LinkConfig\nname: a\nmtu: 9000\n",
    )
    assert out[1] == {
        "apiVersion": "v1alpha1",
        "kind": "HostnameConfig",
        "auto": "stable",
        "hostname": "h",
    }
    assert [d.get("name") for d in out[2:]] == ["a", "b"] and out[2]["mtu"] == 9000


def test_a_patch_file_with_a_document_twice_is_refused() -> None:
    """decoder.go parse: "duplicate document ... is not allowed" (it used to merge them)."""
    twice = "apiVersion: v1alpha1\nkind: LinkConfig\nname: a\nup: true\n---\n" * 2
    with pytest.raises(ValueError, match="duplicate document v1alpha1/LinkConfig/a is not allowed"):
        merged.merge_documents([{"version": "v1alpha1"}], twice)


def test_a_delete_of_a_missing_path_is_a_merge_problem() -> None:
    inv = load()
    first = next(iter(patches.render(inv)))
    rendered = {
        k: v
        + (
            "---\nmachine:\n  kubelet:\n    extraArgs:\n      nope:\n        $patch: delete\n"
            if k == first
            else ""
        )
        for k, v in patches.render(inv).items()
    }
    problems = merged.merged_problems(inv, rendered)
    assert problems and all("cannot merge the patches: patch delete:" in p for p in problems)
    assert all("lookup failed" in p for p in problems)


def test_the_old_hostname_patch_breaks_every_node() -> None:
    """Issue 8 item 1: `hostname:` alone merges with gen config's `auto: stable`."""
    inv = load()
    rendered = {k: v.replace("auto: 'off'\n", "") for k, v in patches.render(inv).items()}
    problems = merged.merged_problems(inv, rendered)
    assert len(problems) == len(inv.talos_nodes)
    assert all("'auto' and 'hostname' cannot be set at the same time" in p for p in problems)
    assert problems[0].startswith("node 90 (domum-cp1): HostnameConfig: ")


@pytest.mark.parametrize(
    "inventory", [REPO / "config" / "domum.yaml", LOOPBACK_INVENTORY], ids=["embedded", "loopback"]
)
def test_inv_check_runs_the_merged_check(inventory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOMUM_INVENTORY", str(inventory))
    found = [f for f in check_talos(load_with_findings()) if f.subject.startswith("merged config")]
    assert [(f.severity, f.subject) for f in found] == [("ok", "merged config")]
    assert "6 nodes" in found[0].message


def test_inv_check_reports_a_broken_merged_config(monkeypatch: pytest.MonkeyPatch) -> None:
    real = patches.node_docs

    def vip_on_a_missing_link(inv: Any, node_id: int, node: Any) -> list[Any]:
        docs = real(inv, node_id, node)
        renamed = ("LinkAliasConfig", "LinkConfig")  # the VIP patch still says lan0
        return [{**d, "name": "lan1"} if d.get("kind") in renamed else d for d in docs]

    monkeypatch.setattr(patches, "node_docs", vip_on_a_missing_link)
    errors = [
        f
        for f in check_talos(load_with_findings())
        if f.severity == "error" and f.subject.startswith("merged config")
    ]
    cps = load().controlplanes
    assert [f.subject for f in errors] == [
        f"merged config node {i} ({n.hostname})" for i, n in cps.items()
    ]
    assert all(
        "link 'lan0' is neither a configured link nor a LinkAliasConfig alias" in f.message
        for f in errors
    )


def test_genconfig_refuses_a_broken_merged_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from domum_tasks.talos.genconfig.tasks import genconfig

    real = patches.node_docs
    monkeypatch.setattr(
        patches,
        "node_docs",
        lambda inv, i, n: [
            *real(inv, i, n),
            {
                "apiVersion": "v1alpha1",
                "kind": "WatchdogTimerConfig",
                "device": "/dev/watchdog0",
                "timeout": "2s",
            },
        ],
    )
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(tmp_path))
    monkeypatch.setenv("DOMUM_TALOS_SCHEMA_DIR", str(tmp_path))  # no schema: warning only
    with pytest.raises(Exit) as exc:
        genconfig(Context(), dry_run=True)
    assert exc.value.code == 2
    assert (
        "node 90 (domum-cp1): WatchdogTimerConfig: watchdog timeout: minimum value is 10s"
        in str(exc.value.message)
    )
    assert not (tmp_path / patches.PATCH_DIR).exists()  # refused before writing anything


def test_yaml12_reads_off_as_a_string() -> None:
    assert yaml12.load_all("auto: off\nup: true\n") == [{"auto": "off", "up": True}]
    assert yaml.safe_load("auto: off") == {"auto": False}  # why the loader exists
