"""The talos ops tasks run end to end against the strict talosctl/flux stand-ins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context, Exit

from domum_tasks.talos.ops import power_tasks
from domum_tasks.talos.ops import tasks as T

# Runs real processes (the talosctl/flux stand-ins, kubectl, the domum CLI): not the fast tier.
pytestmark = pytest.mark.integration


@pytest.fixture
def cluster_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_factory: Any
) -> Iterator[Path]:
    """A repo-like cwd with clusterconfig/talosconfig (no default nodes). schematics.lock lives
    next to the inventory: the shared loopback inventory is copied into config/ so no lock is
    written beside it (a test's own inventory, e.g. the backup lab's, is in tmp already). The
    copy's factory is the stand-in, and `inv talos.schematic` has registered the schematics
    and recorded them in the lock, as a user does once online (so --offline may use them)."""
    import contextlib
    import io
    import os

    from tests.conftest import LOOPBACK_INVENTORY

    root = tmp_path / "repo"
    (root / "clusterconfig").mkdir(parents=True)
    if os.environ.get("DOMUM_INVENTORY") == str(LOOPBACK_INVENTORY):
        (root / "config").mkdir()
        inventory = root / "config" / "domum.yaml"
        down = "image_factory: http://127.0.0.1:9\n"  # replaced as text: comments stay
        text = LOOPBACK_INVENTORY.read_text()
        assert down in text
        inventory.write_text(text.replace(down, f"image_factory: {image_factory.url}\n"))
        monkeypatch.setenv("DOMUM_INVENTORY", str(inventory))
        with contextlib.redirect_stdout(io.StringIO()):
            T.schematic(Context())
        assert (root / "config" / "schematics.lock").is_file()
    cfg = {
        "context": "domum",
        "contexts": {
            "domum": {
                "endpoints": ["127.0.0.90", "127.0.0.91", "127.0.0.96"],
                "ca": "Y2E=",
                "crt": "Y3J0",
                "key": "a2V5",
            }
        },
    }
    (root / "clusterconfig" / "talosconfig").write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(root)
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(root))
    yield root


# the least a node (and the stand-in) accepts: a worker with a machine CA, install disk, endpoint
MINIMAL_CONFIG = (
    "version: v1alpha1\nmachine: {type: worker, ca: {crt: Zm9v}, install: {disk: /dev/sda}}\n"
    "cluster: {controlPlane: {endpoint: https://127.0.0.80:6443}}\n"
)


def talos_calls(fake_cli: Any, sub: str) -> list[list[str]]:
    return [c for c in fake_cli.calls if c[0] == "talosctl" and c[1] == sub]


def nodes_of(argv: list[str]) -> str:
    return argv[argv.index("--nodes") + 1]


def test_upgrade_stops_at_unhealthy_node_and_resumes_flux(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_cli.set_state(unhealthy_after={"upgrade": ["127.0.0.91"]})
    with pytest.raises(Exit) as exc:
        T.upgrade(Context(), wait_timeout="1m", offline=True)
    message = str(exc.value.message)
    assert exc.value.code == 1
    assert "stopped at domum-cp2 (node 91, 2/6)" in message
    assert "upgraded: domum-cp1" in message and "not touched: domum-cp3, domum-xr2" in message
    assert "DeadlineExceeded" in message  # the health gate's stderr tail
    # only cp1 and cp2 were upgraded; nothing after the unhealthy node
    assert [nodes_of(c) for c in talos_calls(fake_cli, "upgrade")] == ["127.0.0.90", "127.0.0.91"]
    flux = [c[1:4] for c in fake_cli.calls_of("flux")]
    assert flux == [["get", "kustomizations", "--all-namespaces"]] + [
        [verb, "kustomization", name]
        for verb in ("suspend", "resume")
        for name in ("flux-system", "infrastructure", "apps")
    ]
    assert not any(k["suspended"] for k in fake_cli.state["kustomizations"])
    # the installer comes from the inventory's schematic + version, not from the node
    image = talos_calls(fake_cli, "upgrade")[0]
    assert image[image.index("--image") + 1] == (
        "factory.talos.dev/metal-installer/"
        "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9:v1.13.9"
    )  # vanilla rpi_generic (image-factory schematic_test.go vector "overlay")


def test_upgrade_happy_path_single_node(fake_cli: Any, cluster_dir: Path) -> None:
    T.upgrade(Context(), node="97", offline=True)
    assert [nodes_of(c) for c in talos_calls(fake_cli, "upgrade")] == ["127.0.0.97"]
    assert len(talos_calls(fake_cli, "health")) == 2  # pre-check + gate
    assert fake_cli.state["upgraded"]["127.0.0.97"].startswith(
        "factory.talos.dev/metal-installer/249d"
    )
    assert not any(k["suspended"] for k in fake_cli.state["kustomizations"])


def test_upgrade_skips_nodes_already_at_target_and_rerun_resumes(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from domum_tasks.inventory.loader import load
    from domum_tasks.talos.ops import schematics

    inv = load()
    want = {
        str(inv.nodes[i].ip): r.id
        for i, r in schematics.resolve(inv, inv.talos_nodes, offline=True).items()
    }
    # cp1 runs the target already; cp2 runs an old version; x (97) booted another schematic
    fake_cli.set_state(
        schematics={**want, "127.0.0.97": "0" * 64},
        versions={"127.0.0.91": "v1.13.8"},
        extensions=[{"name": "iscsi-tools", "version": "v0.2.0"}],
    )
    T.upgrade(Context(), offline=True, wait_timeout="1m")
    assert [nodes_of(c) for c in talos_calls(fake_cli, "upgrade")] == ["127.0.0.91", "127.0.0.97"]
    assert [c[1] for c in fake_cli.calls_of("flux")] == ["get"] + ["suspend"] * 3 + ["resume"] * 3
    assert fake_cli.state["versions"]["127.0.0.91"] == "v1.13.9"
    assert fake_cli.state["schematics"]["127.0.0.97"] == want["127.0.0.97"]
    # a second run finds every node at the target: no Flux suspension, no upgrade
    fake_cli.clear()
    capsys.readouterr()
    T.upgrade(Context(), offline=True, wait_timeout="1m")
    assert "every selected node is up to date" in capsys.readouterr().out
    assert talos_calls(fake_cli, "upgrade") == []
    assert [c[1] for c in fake_cli.calls_of("flux")] == ["get"]  # read-only probe only


def test_upgrade_rerun_after_a_failure_continues_where_it_stopped(
    fake_cli: Any, cluster_dir: Path
) -> None:
    fake_cli.set_state(unhealthy_after={"upgrade": ["127.0.0.91"]})
    with pytest.raises(Exit):
        T.upgrade(Context(), wait_timeout="1m", offline=True)
    fake_cli.set_state(unhealthy=[], unhealthy_after={})  # the operator fixed domum-cp2
    fake_cli.clear()
    T.upgrade(Context(), wait_timeout="1m", offline=True)
    assert [nodes_of(c) for c in talos_calls(fake_cli, "upgrade")] == [
        "127.0.0.96",
        "127.0.0.92",
        "127.0.0.97",
        "127.0.0.98",
    ]


def test_upgrade_unhealthy_before_start_touches_no_node(fake_cli: Any, cluster_dir: Path) -> None:
    fake_cli.set_state(unhealthy=["127.0.0.98"])
    with pytest.raises(Exit) as exc:
        T.upgrade(Context(), offline=True, wait_timeout="1m")
    assert "before any node was touched" in str(exc.value.message)
    assert talos_calls(fake_cli, "upgrade") == []
    assert [c[1] for c in fake_cli.calls_of("flux")] == ["get"] + ["suspend"] * 3 + ["resume"] * 3
    assert not any(k["suspended"] for k in fake_cli.state["kustomizations"])


def test_upgrade_dry_run_json_changes_nothing(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    T.upgrade(Context(), node="91", offline=True, dry_run=True, json=True)
    steps = json.loads(capsys.readouterr().out)
    assert steps[0]["argv"][:4] == ["flux", "suspend", "kustomization", "flux-system"]
    assert steps[-1]["finally"] is True and steps[-1]["argv"][1:4] == [
        "resume",
        "kustomization",
        "apps",
    ]
    assert {c[1] for c in fake_cli.calls} <= {"version", "get"}  # read-only probes only
    assert "upgraded" not in fake_cli.state


# Two Kustomizations Flux reconciles, one the operator suspended on purpose (another namespace).
OPERATOR_KS = [
    {"name": "flux-system", "namespace": "flux-system", "ready": True, "suspended": False},
    {"name": "media", "namespace": "apps", "ready": True, "suspended": True},
    {"name": "web", "namespace": "apps", "ready": True, "suspended": False},
]


def _suspended(fake_cli: Any) -> dict[str, bool]:
    return {
        f"{k['namespace']}/{k['name']}": k["suspended"] for k in fake_cli.state["kustomizations"]
    }


@pytest.mark.parametrize("fails", [False, True])
def test_upgrade_leaves_operator_suspended_kustomization_suspended(
    fake_cli: Any,
    cluster_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fails: bool,
) -> None:
    from domum_tasks.talos.ops import glue as ops_glue

    fake_cli.set_state(kustomizations=OPERATOR_KS)
    if fails:
        fake_cli.set_state(unhealthy_after={"upgrade": ["127.0.0.91"]})
    during: list[dict[str, bool]] = []
    mark = ops_glue.Progress.mark
    monkeypatch.setattr(
        ops_glue.Progress,
        "mark",
        lambda self, args: (during.append(_suspended(fake_cli)), mark(self, args)),
    )
    if fails:
        with pytest.raises(Exit) as exc:
            T.upgrade(Context(), wait_timeout="1m", offline=True)
        assert "stopped at domum-cp2" in str(exc.value.message)
    else:
        T.upgrade(Context(), wait_timeout="1m", offline=True)
    # while nodes were upgraded, everything was suspended
    assert during and all(d == dict.fromkeys(d, True) for d in during)
    assert len(during) == (2 if fails else 6)
    # afterwards, only what the upgrade suspended was resumed
    assert _suspended(fake_cli) == {
        "flux-system/flux-system": False,
        "apps/media": True,
        "apps/web": False,
    }
    touched = [
        (c[1], c[3], c[c.index("--namespace") + 1])
        for c in fake_cli.calls_of("flux")
        if c[1] in ("suspend", "resume")
    ]
    assert touched == [
        (v, n, ns)
        for v in ("suspend", "resume")
        for n, ns in (("flux-system", "flux-system"), ("web", "apps"))
    ]
    assert "left suspended: apps/media" in capsys.readouterr().out


def test_upgrade_refuses_when_kustomizations_cannot_be_listed(
    fake_cli: Any, cluster_dir: Path
) -> None:
    fake_cli.set_state(
        kustomizations=OPERATOR_KS,
        fail={
            "flux get kustomizations": {
                "message": 'Get "https://127.0.0.90:6443/apis": dial tcp 127.0.0.90:6443: connect: '
                "connection refused"
            }
        },
    )
    with pytest.raises(Exit) as exc:
        T.upgrade(Context(), wait_timeout="1m", offline=True)
    message = str(exc.value.message)
    assert exc.value.code == 1
    assert "stopped before any node was touched: cannot list Flux Kustomizations" in message
    assert "connection refused" in message and "--no-flux" in message
    assert talos_calls(fake_cli, "upgrade") == [] and talos_calls(fake_cli, "health") == []
    assert [c[1] for c in fake_cli.calls_of("flux")] == ["get"]
    assert _suspended(fake_cli)["apps/media"] is True


def test_upgrade_dry_run_refuses_like_the_real_run_when_kustomizations_are_unlisted(
    fake_cli: Any, cluster_dir: Path
) -> None:
    fake_cli.set_state(fail={"flux get kustomizations": "connection refused"})
    outcomes = []
    for dry_run in (True, False):
        with pytest.raises(Exit) as exc:
            T.upgrade(Context(), node="91", offline=True, dry_run=dry_run)
        outcomes.append((exc.value.code, exc.value.message))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 1 and "cannot list Flux Kustomizations" in str(outcomes[0][1])
    assert "upgraded" not in fake_cli.state


def test_upgrade_without_flux_installed_plans_all_with_a_note_then_exits_3(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_cli.remove("flux")
    with pytest.raises(Exit) as exc:
        T.upgrade(Context(), node="91", offline=True, dry_run=True)
    assert exc.value.code == 3 and "flux not found" in str(exc.value.message)
    out = capsys.readouterr().out
    assert "flux suspend kustomization --all" in out and "flux resume kustomization --all" in out
    assert "Flux Kustomizations not listed (flux not found): planned `--all`" in out
    assert fake_cli.calls == []  # no probe of a cluster the task cannot act on


def test_bootstrap_on_bootstrapped_cluster_is_a_noop(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = [
        {"hostname": h, "ip": ip, "type": "controlplane"}
        for h, ip in (
            ("domum-cp1", "127.0.0.90"),
            ("domum-cp2", "127.0.0.91"),
            ("domum-cp3", "127.0.0.96"),
        )
    ]
    fake_cli.set_state(bootstrapped=True, members=members)
    T.bootstrap(Context(), deadline="30s")
    out = capsys.readouterr().out
    assert "already bootstrapped: etcd members domum-cp1, domum-cp2, domum-cp3" in out
    assert talos_calls(fake_cli, "bootstrap") == []  # etcd answered: nothing is sent
    assert [nodes_of(c) for c in talos_calls(fake_cli, "etcd")] == ["127.0.0.90"]


def test_bootstrap_never_runs_while_another_control_plane_has_etcd(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the first control plane was reset (etcd not running there): bootstrapping it would split etcd
    fake_cli.set_state(bootstrapped=True, etcd_down=["127.0.0.90"])
    T.bootstrap(Context(), deadline="30s")
    assert "already bootstrapped: etcd members talos-91" in capsys.readouterr().out
    assert talos_calls(fake_cli, "bootstrap") == []
    assert [nodes_of(c) for c in talos_calls(fake_cli, "etcd")] == ["127.0.0.90", "127.0.0.91"]


def test_bootstrap_answered_already_exists_is_a_noop(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # etcd members unreadable on every control plane (e.g. timeouts), yet bootstrapped
    fake_cli.set_state(
        bootstrapped=True, fail={"etcd members": {"message": "i/o timeout", "times": 3}}
    )
    T.bootstrap(Context(), deadline="30s")
    out = capsys.readouterr().out
    assert "assuming not bootstrapped" in out and "talosctl answered AlreadyExists" in out
    (boot,) = talos_calls(fake_cli, "bootstrap")  # one attempt, no retry loop
    assert nodes_of(boot) == "127.0.0.90" and boot[boot.index("--endpoints") + 1] == "127.0.0.90"


def test_bootstrap_fresh_then_retry_after_transient_failure(
    fake_cli: Any, cluster_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from domum_tasks import taskutil

    slept: list[float] = []
    real = taskutil.executor
    monkeypatch.setattr(
        taskutil, "executor", lambda **k: dataclasses.replace(real(**k), sleep=slept.append)
    )
    fake_cli.set_state(fail={"bootstrap": {"message": "connection refused", "times": 2}})
    T.bootstrap(Context(), deadline="5m")
    assert fake_cli.state["bootstrapped"] is True
    assert len(talos_calls(fake_cli, "bootstrap")) == 3
    assert slept == [10, 10]  # retried at the plan's interval, not in a busy loop


def test_apply_all_insecure(fake_cli: Any, cluster_dir: Path) -> None:
    for host in ("domum-cp1", "domum-cp2", "domum-cp3", "domum-xr2", "domum-x", "domum-m720q"):
        (cluster_dir / "clusterconfig" / f"domum-{host}.yaml").write_text(MINIMAL_CONFIG)
    T.apply(Context(), all=True, insecure=True)
    calls = talos_calls(fake_cli, "apply-config")
    assert [nodes_of(c) for c in calls] == [
        "127.0.0.90",
        "127.0.0.91",
        "127.0.0.96",
        "127.0.0.92",
        "127.0.0.97",
        "127.0.0.98",
    ]


def test_apply_without_generated_config_is_a_config_error(fake_cli: Any, cluster_dir: Path) -> None:
    with pytest.raises(Exit) as exc:
        T.apply(Context(), node="92")
    assert exc.value.code == 2 and "inv talos.genconfig" in str(exc.value.message)
    with pytest.raises(Exit) as exc:
        T.apply(Context())
    assert "exactly one of --node N or --all" in str(exc.value.message)
    assert fake_cli.calls == []


def test_kubeconfig_health_upgrade_k8s(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    T.kubeconfig(Context(), out="out/kubeconfig")
    assert yaml.safe_load((cluster_dir / "out" / "kubeconfig").read_text())["clusters"]
    T.upgrade_k8s(Context())
    assert fake_cli.state["kubernetes_version"] == "1.35.4"
    capsys.readouterr()
    T.health(Context(), json=True)
    rows = json.loads(capsys.readouterr().out)
    assert [(r["node"], r["version"], r["ready"]) for r in rows] == [
        (i, "v1.13.9", "ok") for i in (90, 91, 92, 96, 97, 98)
    ]


def test_health_failure_still_shows_table(
    fake_cli: Any, cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_cli.set_state(unhealthy=["127.0.0.92"])
    with pytest.raises(Exit) as exc:
        T.health(Context(), wait_timeout="1m", json=True)
    assert exc.value.code == 1
    rows = {r["node"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[92]["ready"] == "not ready" and rows[90]["ready"] == "ok"


def test_reset_needs_yes_then_runs(
    fake_cli: Any, cluster_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal
    with pytest.raises(Exit) as exc:
        power_tasks.reset(Context(), node="92")
    assert exc.value.code == 4 and fake_cli.calls == []
    power_tasks.reset(Context(), node="92", yes=True)
    assert fake_cli.state["reset"] == ["127.0.0.92"]
    assert "--graceful=true" in talos_calls(fake_cli, "reset")[-1]
    power_tasks.reset(
        Context(), node="97", yes=True, graceful=False
    )  # --no-graceful reaches talosctl
    assert "--graceful=false" in talos_calls(fake_cli, "reset")[-1]


def test_fake_flux_table_parses_and_suspend_by_name_is_scoped(
    fake_cli: Any, cluster_dir: Path
) -> None:
    import subprocess

    from domum_tasks.inventory.loader import load
    from domum_tasks.talos import argv as A
    from domum_tasks.talos.ops import facts

    inv = load()
    fake_cli.set_state(kustomizations=OPERATOR_KS)
    found, err = facts.probe_kustomizations(inv)
    assert err == "" and [(k.ref, k.suspended) for k in found or []] == [
        ("flux-system/flux-system", False),
        ("apps/media", True),
        ("apps/web", False),
    ]
    # by name, the namespace decides: `web` is not in flux-system
    proc = subprocess.run(
        A.flux(inv, "suspend", "kustomization", "web"), capture_output=True, text=True
    )
    assert proc.returncode == 1 and '"web" not found' in proc.stderr
    subprocess.run(A.flux(inv, "suspend", "kustomization", "web", namespace="apps"), check=True)
    assert _suspended(fake_cli) == {
        "flux-system/flux-system": False,
        "apps/media": True,
        "apps/web": True,
    }
    table = subprocess.run(
        A.flux(inv, "get", "kustomizations", "--all-namespaces"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # flux's tablewriter layout: cells padded to the column width, each followed by a tab
    lines = table.splitlines()
    assert [c.strip() for c in lines[0].split("\t")] == [
        "NAMESPACE",
        "NAME",
        "REVISION",
        "SUSPENDED",
        "READY",
        "MESSAGE",
        "",
    ]
    assert len({tuple(len(c) for c in line.split("\t")) for line in lines}) == 1
    assert "\tmain@sha1:3f2e9c1d\t" in lines[1]  # hex truncated like flux's TruncateHex


# --- a missing CLI is exit 3 at once, with nothing done first ---------------------------------


@pytest.mark.parametrize(
    ("task", "kwargs"),
    [
        (T.bootstrap, {}),
        (T.upgrade, {"offline": True}),
        (T.health, {}),
        (T.upgrade_k8s, {}),
        (T.apply, {"all": True}),
    ],
)
def test_missing_talosctl_is_exit_3_at_once(
    fake_cli_absent: Any,
    cluster_dir: Path,
    capsys: pytest.CaptureFixture[str],
    task: Any,
    kwargs: dict[str, Any],
) -> None:
    import time

    start = time.monotonic()
    with pytest.raises(Exit) as exc:
        task(Context(), **kwargs)
    assert exc.value.code == 3 and "talosctl not found" in str(exc.value.message)
    assert time.monotonic() - start < 5  # no retrying until a deadline
    assert capsys.readouterr().out == ""  # no table of `down` nodes first


def test_upgrade_needs_flux_unless_no_flux(fake_cli: Any, cluster_dir: Path) -> None:
    fake_cli.remove("flux")
    with pytest.raises(Exit) as exc:
        T.upgrade(Context(), offline=True)
    assert exc.value.code == 3 and "flux not found" in str(exc.value.message)
    assert fake_cli.calls == []


def test_refusals_leave_no_directories(fake_cli_absent: Any, cluster_dir: Path) -> None:
    for task, kwargs in (
        (T.kubeconfig, {"out": "kube/out/config"}),
        (T.etcd_snapshot, {"out": "a/b.db"}),
    ):
        with pytest.raises(Exit) as exc:
            task(Context(), **kwargs)
        assert exc.value.code == 3
    assert not (cluster_dir / "kube").exists() and not (cluster_dir / "a").exists()


def test_tilde_in_out_is_the_home_directory(
    fake_cli: Any, cluster_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    T.kubeconfig(Context(), out="~/.kube/domum")  # as `--out=~/.kube/domum` arrives
    assert (tmp_path / "home" / ".kube" / "domum").is_file()
    assert not (cluster_dir / "~").exists()


@pytest.mark.parity("talos.kubeconfig")
def test_kubeconfig_parity(plan_parity: Any, fake_cli: Any, cluster_dir: Path) -> None:
    plans = plan_parity(T.kubeconfig, out="out/kubeconfig")
    assert [s["kind"] for s in plans[0]] == ["local", "cmd"]
