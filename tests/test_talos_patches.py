"""Talos patches: pure rendering, schema validation, the genconfig planner and `inv check`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import pytest
import yaml

from domum_tasks.inventory.loader import load, load_with_findings
from domum_tasks.plan import Cmd, Local, Write
from domum_tasks.talos.genconfig import patches, schema
from domum_tasks.talos.genconfig.checks import check_talos
from domum_tasks.talos.genconfig.plan import GenFacts, install_image, plan_genconfig
from domum_tasks.talos.schematic import schematic_for
from tests.conftest import CONTRACTS, REPO

DEFAULT_INVENTORY = REPO / "config" / "domum.yaml"
SCHEMA = CONTRACTS / "talos-config.v1.13.schema.json"
needs_schema = pytest.mark.skipif(not SCHEMA.exists(), reason="../shared/contracts is absent")


def docs_of(text: str) -> list[dict[str, Any]]:
    return patches.load_docs(text)


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d.get("kind", "v1alpha1"): d for d in docs}


# --- rendering -------------------------------------------------------------------------------


def test_layout_only_talos_nodes_split_by_role() -> None:
    inv = load()
    rendered = patches.render(inv)
    assert sorted(rendered) == [
        "cluster/core/01-talos/common.yaml",
        "cluster/core/01-talos/controlplane/node-90.yaml",
        "cluster/core/01-talos/controlplane/node-91.yaml",
        "cluster/core/01-talos/controlplane/node-96.yaml",
        "cluster/core/01-talos/controlplane/vip-config.yaml",
        "cluster/core/01-talos/workers/node-92.yaml",
        "cluster/core/01-talos/workers/node-97.yaml",
        "cluster/core/01-talos/workers/node-98.yaml",
    ]  # 93-95 run Raspberry Pi OS: no patches
    for text in rendered.values():
        assert text.startswith(patches.HEADER)
        assert "inv talos.genconfig" in text.splitlines()[0]


def test_rendering_is_deterministic_and_the_committed_tree_matches(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DOMUM_INVENTORY", str(DEFAULT_INVENTORY))
    first, second = patches.render(load()), patches.render(load())
    assert first == second
    for rel, text in first.items():
        assert (REPO / rel).read_text() == text, f"{rel}: run inv talos.genconfig"


def test_node_patch_carries_hostname_address_route_disk_and_pi_specifics() -> None:
    inv = load()
    docs = by_kind(docs_of(patches.render(inv)["cluster/core/01-talos/controlplane/node-90.yaml"]))
    assert docs["HostnameConfig"]["hostname"] == "domum-cp1"
    assert docs["v1alpha1"]["machine"]["install"]["disk"] == "/dev/mmcblk0"
    link = docs["LinkConfig"]
    assert link["name"] == patches.LAN_LINK
    assert link["addresses"] == [{"address": "127.0.0.90/24"}]
    assert link["routes"] == [{"gateway": "127.0.0.1"}]
    alias = docs["LinkAliasConfig"]
    assert alias["name"] == patches.LAN_LINK
    assert alias["selector"]["match"] == 'mac(link.permanent_addr) == "dc:a6:32:10:00:90"'
    assert "WatchdogTimerConfig" not in docs  # only where the inventory opts in
    # control planes pin etcd to the node network (never the floating VIP)
    assert docs["v1alpha1"]["cluster"]["etcd"]["advertisedSubnets"] == ["127.0.0.0/24"]


def test_vm_and_worker_patches() -> None:
    rendered = patches.render(load())
    vm = by_kind(docs_of(rendered["cluster/core/01-talos/controlplane/node-96.yaml"]))
    assert vm["v1alpha1"]["machine"]["install"]["disk"] == "/dev/sda"
    assert vm["v1alpha1"]["machine"]["nodeLabels"]["domum.dev/platform"] == "proxmox-vm"
    assert "WatchdogTimerConfig" not in vm
    pi5 = by_kind(docs_of(rendered["cluster/core/01-talos/workers/node-92.yaml"]))
    # a flashed Pi boots its card whatever install.disk says; /var goes on the NVMe instead
    assert pi5["v1alpha1"]["machine"]["install"]["disk"] == "/dev/mmcblk0"
    match = pi5["VolumeConfig"]["provisioning"]["diskSelector"]["match"]
    assert pi5["VolumeConfig"]["name"] == "EPHEMERAL"
    assert match == '!system_disk && disk.dev_path == "/dev/nvme0n1"'
    assert "cluster" not in pi5["v1alpha1"]  # etcd settings are for control planes only


def test_common_and_vip_patches_follow_the_inventory() -> None:
    inv = load()
    rendered = patches.render(inv)
    common = by_kind(docs_of(rendered[patches.COMMON]))
    net = common["v1alpha1"]["cluster"]["network"]
    assert net == {
        "podSubnets": ["10.244.0.0/16"],
        "serviceSubnets": ["10.96.0.0/12"],
        "cni": {"name": "flannel", "flannel": {"kubeNetworkPoliciesEnabled": True}},
    }
    assert common["v1alpha1"]["cluster"]["clusterName"] == "domum"
    assert common["ResolverConfig"]["nameservers"] == [
        {"address": "127.0.0.1"},
        {"address": "1.1.1.1"},
    ]
    assert common["TimeSyncConfig"]["ntp"]["servers"] == ["time.cloudflare.com"]
    assert "network" not in common["v1alpha1"].get("machine", {})  # gone since Talos 1.12
    (vip,) = docs_of(rendered[patches.VIP_CONFIG])
    assert vip == {
        "apiVersion": "v1alpha1",
        "kind": "Layer2VIPConfig",
        "name": "127.0.0.80",
        "link": patches.LAN_LINK,
    }


def test_patch_order_per_node() -> None:
    inv = load()
    assert patches.patches_for(inv, 90) == [
        patches.COMMON,
        patches.VIP_CONFIG,
        "cluster/core/01-talos/controlplane/node-90.yaml",
    ]
    assert patches.patches_for(inv, 97) == [
        patches.COMMON,
        "cluster/core/01-talos/workers/node-97.yaml",
    ]


# --- schema ----------------------------------------------------------------------------------


@needs_schema
def test_every_patch_document_is_schema_valid_and_matches_one_schema_branch() -> None:
    from jsonschema import Draft202012Validator

    ps = schema.load(SCHEMA)
    whole = Draft202012Validator(ps.schema)  # the schema's own oneOf, as Talos tooling uses it
    for rel, text in patches.render(load()).items():
        assert schema.validate_text(ps, rel, text) == []
        for doc in docs_of(text):
            assert list(whole.iter_errors(doc)) == [], (rel, doc)


@needs_schema
def test_broken_patches_fail_with_file_document_and_field() -> None:
    ps = schema.load(SCHEMA)
    text = patches.render(load())[patches.COMMON].replace("- address: 1.1.1.1", "- adress: 1.1.1.1")
    (problem,) = schema.validate_text(ps, "common.yaml", text)
    assert problem.startswith("common.yaml doc 2 (ResolverConfig): nameservers.1: ")
    assert "'adress' was unexpected" in problem

    legacy = "machine:\n  network:\n    hostname: x\n"
    (problem,) = schema.validate_text(ps, "old.yaml", legacy)
    assert "machine: " in problem and "'network' was unexpected" in problem

    (problem,) = schema.validate_text(ps, "k.yaml", "apiVersion: v1alpha1\nkind: HostnameConfg\n")
    assert "unknown document kind 'HostnameConfg'" in problem and "HostnameConfig" in problem

    (problem,) = schema.validate_text(ps, "v.yaml", "apiVersion: v1alpha1\nkind: Layer2VIPConfig\n")
    assert "'name' is a required property" in problem

    (problem,) = schema.validate_text(ps, "y.yaml", "machine: [\n")
    assert problem.startswith("y.yaml: not valid YAML")


def test_missing_schema_is_a_warning(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DOMUM_TALOS_SCHEMA_DIR", str(tmp_path))
    findings = list(check_talos(load_with_findings()))
    warnings = [f for f in findings if f.subject == "schema"]
    assert [f.severity for f in warnings] == ["warning"]
    assert warnings[0].message.startswith("not schema-checked: run `inv tools.install`")
    assert "no Talos v1.13 schema" in warnings[0].message


# --- inv check -------------------------------------------------------------------------------


@needs_schema
def test_check_is_clean_for_the_committed_tree(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DOMUM_INVENTORY", str(DEFAULT_INVENTORY))
    findings = list(check_talos(load_with_findings()))
    assert {f.severity for f in findings} == {"ok"}, findings


@needs_schema
def test_check_reports_drift_of_committed_files(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DOMUM_INVENTORY", str(DEFAULT_INVENTORY))
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(tmp_path))
    monkeypatch.setenv("DOMUM_TALOS_SCHEMA_DIR", str(CONTRACTS))
    shutil.copytree(REPO / patches.PATCH_DIR, tmp_path / patches.PATCH_DIR)
    edited = tmp_path / "cluster/core/01-talos/workers/node-97.yaml"
    edited.write_text(edited.read_text().replace("nvme0n1", "sdb"))
    stale = tmp_path / "cluster/core/01-talos/workers/node-99.yaml"
    stale.write_text(patches.HEADER + "machine: {}\n")
    (tmp_path / patches.COMMON).unlink()
    errors = {
        f.subject: f.message for f in check_talos(load_with_findings()) if f.severity == "error"
    }
    assert errors == {
        "cluster/core/01-talos/common.yaml": "missing: does not match the inventory; "
        "run `inv talos.genconfig`",
        "cluster/core/01-talos/workers/node-97.yaml": "differs: does not match the inventory; "
        "run `inv talos.genconfig`",
        "cluster/core/01-talos/workers/node-99.yaml": "stale: does not match the inventory; "
        "run `inv talos.genconfig`",
    }


def test_check_with_another_inventory_only_warns_once() -> None:
    findings = [f for f in check_talos(load_with_findings()) if f.subject == patches.PATCH_DIR]
    assert [f.severity for f in findings] == ["warning"]  # loopback inventory vs committed tree


def test_inv_check_includes_talos() -> None:
    from domum_tasks.check import CHECKERS

    assert "talos" in dict(CHECKERS)


# --- planner ---------------------------------------------------------------------------------


def facts(**kw: Any) -> GenFacts:
    return GenFacts(root="/repo", tmp_dir="/tmp/x", **kw)


def cmds(plan: Any) -> list[tuple[str, ...]]:
    return [s.argv for s in plan.steps if isinstance(s, Cmd)]


def test_first_run_generates_and_encrypts_secrets_then_configs() -> None:
    inv = load()
    plan = plan_genconfig(inv, patches.render(inv), facts())
    writes = [s for s in plan.steps if isinstance(s, Write)]
    assert len(writes) == 8
    argvs = cmds(plan)
    assert argvs[0] == ("talosctl", "gen", "secrets", "--output-file", "/tmp/x/secrets.yaml")
    actions = [s.action for s in plan.steps if isinstance(s, Local)]
    assert actions[:2] == ["private-dir", "encrypt-secrets"]  # the bundle's 0700 dir first
    assert [(s.action, s.args) for s in plan.finally_steps if isinstance(s, Local)] == [
        ("remove-private-dir", {"path": "/tmp/x"})
    ]  # and gone even after a failure
    gens = [a for a in argvs if a[1:3] == ("gen", "config")]
    assert len(gens) == 7  # 6 nodes + the talosconfig
    validates = [a for a in argvs if a[1] == "validate"]
    assert [a[a.index("--config") + 1] for a in validates] == [
        f"clusterconfig/domum-{inv.nodes[i].hostname}.yaml" for i in (90, 91, 92, 96, 97, 98)
    ]
    assert all(a[a.index("--mode") + 1] == "metal" for a in validates)
    for a in [*gens, *validates]:  # offline commands take no client flags
        assert not {"--talosconfig", "--nodes", "-n", "--endpoints", "-e"} & set(a)
    cp1 = gens[0]
    assert cp1[3:5] == ("domum", "https://127.0.0.80:6443")
    assert cp1[cp1.index("--talos-version") + 1] == "v1.13"
    assert cp1[cp1.index("--kubernetes-version") + 1] == "1.35.4"
    assert cp1[cp1.index("--output-types") + 1] == "controlplane"
    patches_given = [cp1[i + 1] for i, a in enumerate(cp1) if a == "--config-patch"]
    assert patches_given == ["@" + p for p in patches.patches_for(inv, 90)]
    endpoint_cmd = next(a for a in argvs if a[1:3] == ("config", "endpoint"))
    assert endpoint_cmd[3:] == (
        "--talosconfig",
        "clusterconfig/talosconfig",
        "127.0.0.90",
        "127.0.0.91",
        "127.0.0.96",
    )
    node_cmd = next(a for a in argvs if a[1:3] == ("config", "node"))
    assert node_cmd[3:] == ("--talosconfig", "clusterconfig/talosconfig")  # empties the list
    assert not plan.destructive


def test_existing_secrets_are_only_decrypted_and_rotation_is_destructive() -> None:
    inv = load()
    rendered = patches.render(inv)
    plan = plan_genconfig(inv, rendered, facts(secrets_exist=True, on_disk=rendered))
    assert not [s for s in plan.steps if isinstance(s, Write)]  # second run: nothing to write
    assert not [a for a in cmds(plan) if a[1:3] == ("gen", "secrets")]
    (decrypt,) = [s for s in plan.steps if isinstance(s, Local) and s.action == "decrypt-secrets"]
    assert decrypt.args["dst"] == "/tmp/x/secrets.yaml" and decrypt.args["mode"] == "0600"
    assert any("never regenerated" in n for n in plan.notes)

    rotate = plan_genconfig(inv, rendered, facts(secrets_exist=True), rotate=True)
    assert rotate.destructive
    assert [a for a in cmds(rotate) if a[1:3] == ("gen", "secrets")]
    assert any("talosconfig" in n for n in rotate.notes)


def test_install_image_is_the_factory_installer_of_the_node_schematic() -> None:
    inv = load()
    pi = install_image(inv, 90)
    vm = install_image(inv, 96)
    assert pi == (
        f"factory.talos.dev/metal-installer/{schematic_for(inv, inv.nodes[90]).local_id}:v1.13.9"
    )
    assert vm != pi and vm.endswith(":v1.13.9")


def test_planned_argv_passes_the_contract(tmp_path) -> None:  # type: ignore[no-untyped-def]
    checker = CONTRACTS / "check_argv.py"
    if not checker.exists():
        pytest.skip("../shared/contracts is absent")
    inv = load()
    rendered = patches.render(inv)
    planned = [
        list(a)
        for plan in (
            plan_genconfig(inv, rendered, facts()),
            plan_genconfig(inv, rendered, facts(secrets_exist=True), rotate=True),
        )
        for a in cmds(plan)
    ]
    src = tmp_path / "argv.json"
    src.write_text(json.dumps(planned))
    proc = subprocess.run(
        [sys.executable, str(checker), str(src), "--talos-version", "v1.13", "-q"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_yaml_dump_has_no_anchors_and_stable_key_order() -> None:
    inv = load()
    text = patches.render(inv)["cluster/core/01-talos/controlplane/node-91.yaml"]
    assert "&id" not in text and "*id" not in text
    first = yaml.safe_load_all(text.split("---\n")[1])
    assert list(next(first)) == ["apiVersion", "kind", "auto", "hostname"]


def test_patches_of_a_removed_node_are_deleted() -> None:
    inv = load()
    rendered = patches.render(inv)
    on_disk = {
        **rendered,
        "cluster/core/01-talos/workers/node-99.yaml": patches.HEADER + "{}\n",
        "cluster/core/01-talos/workers/hand-made.yaml": "machine: {}\n",
    }
    plan = plan_genconfig(inv, rendered, facts(secrets_exist=True, on_disk=on_disk))
    removes = [
        s.args["path"] for s in plan.steps if isinstance(s, Local) and s.action == "remove-file"
    ]
    assert removes == ["/repo/cluster/core/01-talos/workers/node-99.yaml"]  # only generated ones
