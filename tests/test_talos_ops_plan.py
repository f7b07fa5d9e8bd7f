"""Pure planner tables for the talos ops tasks (no I/O): argv shapes, ordering, idempotency."""

from __future__ import annotations

import io
import json

import pytest

from domum_tasks.errors import CommandFailed, ConfigError, DomumError
from domum_tasks.inventory.loader import load
from domum_tasks.plan import Cmd, Local, Plan, Wait
from domum_tasks.run import Executor
from domum_tasks.talos import argv as A
from domum_tasks.talos.ops import facts as F
from domum_tasks.talos.ops import plan as P
from domum_tasks.talos.ops.facts import Kustomization, NodeFacts
from tests.conftest import LOOPBACK_INVENTORY
from tests.fixtures.contract import assert_argv_valid

INV = load(LOOPBACK_INVENTORY)
SID = "a" * 64
OTHER = "b" * 64


def cmds(plan: Plan, *, finally_too: bool = True) -> list[list[str]]:
    steps = [*plan.steps, *(plan.finally_steps if finally_too else [])]
    out = []
    for s in steps:
        if isinstance(s, Wait) and isinstance(s.probe, Cmd):
            s = s.probe
        if isinstance(s, Cmd):
            out.append(list(s.argv))
    return out


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


# --- argv builders ---------------------------------------------------------------------------


def test_talosctl_flags_follow_subcommand_and_are_explicit() -> None:
    argv = A.talosctl(INV, "etcd snapshot", "x.db", nodes=["127.0.0.90"])
    assert argv[:3] == ("talosctl", "etcd", "snapshot")
    assert flag(list(argv), "--talosconfig") == "clusterconfig/talosconfig"
    assert flag(list(argv), "--nodes") == "127.0.0.90"
    assert flag(list(argv), "--endpoints") == "127.0.0.90,127.0.0.91,127.0.0.96"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: A.talosctl(INV, "bootstrap", nodes=[]), "need one or more"),
        (lambda: A.talosctl(INV, "--insecure", nodes=["1"]), "words, not flags"),
        (lambda: A.talosctl(INV, "gen config", nodes=["1"]), "offline"),
        (lambda: A.talosctl(INV, "health", "-n", "x", nodes=["1"]), "keywords"),
        (lambda: A.talosctl_offline("validate", "--nodes", "x"), "rejects client flags"),
        (lambda: A.talosctl_offline("upgrade"), "talks to nodes"),
        (lambda: A.flux(INV, "--all"), "command comes first"),
    ],
)
def test_builders_refuse_wrong_shapes(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def test_flux_builder_is_explicit() -> None:
    argv = A.flux(INV, "suspend", "kustomization", "--all")
    assert argv[:4] == ("flux", "suspend", "kustomization", "--all")
    assert flag(list(argv), "--kubeconfig") == "clusterconfig/kubeconfig"
    assert flag(list(argv), "--namespace") == "flux-system"


# --- small pure helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("10m", 600), ("90s", 90), ("1h30m", 5400), ("2h", 7200)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert P.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "ten", "0s", "10 m", "-5m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="--wait-timeout"):
        P.parse_duration(text)


def test_rolling_order_control_planes_first() -> None:
    assert P.rolling_order(INV) == [90, 91, 96, 92, 97, 98]
    assert P.rolling_order(INV, [98, 91]) == [91, 98]


def test_talos_node_rejects_raspios_and_unknown() -> None:
    with pytest.raises(ConfigError, match="runs raspios"):
        P.talos_node(INV, 93)
    with pytest.raises(ConfigError, match="no such node"):
        P.talos_node(INV, 42)


@pytest.mark.parametrize(
    ("facts", "upgrade", "why"),
    [
        (None, True, "not probed"),
        (NodeFacts(90, "h", "ip", error="connection refused"), True, "connection refused"),
        (NodeFacts(90, "h", "ip", version="v1.12.4", schematic=SID), True, "runs v1.12.4"),
        (NodeFacts(90, "h", "ip", version="v1.13.9", schematic=None), True, "unreadable"),
        (NodeFacts(90, "h", "ip", version="v1.13.9", schematic=OTHER), True, "booted schematic"),
        (NodeFacts(90, "h", "ip", version="v1.13.9", schematic=SID), False, "already at"),
    ],
)
def test_needs_upgrade(facts: NodeFacts | None, upgrade: bool, why: str) -> None:
    got, reason = P.needs_upgrade(facts, "v1.13.9", SID)
    assert got is upgrade and why in reason


# --- planners --------------------------------------------------------------------------------


def test_apply_insecure_uses_node_as_endpoint_and_all_is_rolling() -> None:
    plan = P.plan_apply(INV, [92, 90], insecure=True, mode="auto")
    argvs = cmds(plan)
    assert [flag(a, "--nodes") for a in argvs] == ["127.0.0.90", "127.0.0.92"]
    for a in argvs:
        assert a[1] == "apply-config" and "--insecure" in a
        assert flag(a, "--endpoints") == flag(a, "--nodes")
    assert flag(argvs[0], "--file") == "clusterconfig/domum-domum-cp1.yaml"
    assert any("inv talos.genconfig" in n for n in plan.notes)  # files do not exist
    secure = cmds(
        P.plan_apply(INV, [92], mode="no-reboot", existing=["clusterconfig/domum-domum-xr2.yaml"])
    )
    assert "--insecure" not in secure[0] and flag(secure[0], "--mode") == "no-reboot"
    assert flag(secure[0], "--endpoints") == "127.0.0.90,127.0.0.91,127.0.0.96"


def test_apply_rejects_bad_mode() -> None:
    with pytest.raises(ConfigError, match="valid modes are auto, no-reboot, reboot, staged, try"):
        P.plan_apply(INV, [90], mode="reboot-now")


def test_bootstrap_noop_when_etcd_has_members() -> None:
    plan = P.plan_bootstrap(INV, ["domum-cp1", "domum-cp2"])
    assert plan.steps == [] and "already bootstrapped" in plan.notes[0]


def test_bootstrap_retries_on_first_controlplane_and_tolerates_already_exists() -> None:
    plan = P.plan_bootstrap(INV, None, "connection refused", deadline_s=300)
    boot, members = plan.steps
    assert isinstance(boot, Wait) and boot.deadline_s == 300 and isinstance(boot.probe, Cmd)
    assert boot.probe.argv[1] == "bootstrap" and "AlreadyExists" in boot.probe.ok_stderr
    assert flag(list(boot.probe.argv), "--nodes") == "127.0.0.90"
    assert isinstance(members, Wait) and members.probe is not None
    assert "assuming not bootstrapped" in plan.notes[0]


def test_upgrade_plan_shape() -> None:
    images = {i: f"factory.talos.dev/metal-installer/{SID}:v1.13.9" for i in INV.talos_nodes}
    plan = P.plan_upgrade(INV, images, dict.fromkeys(INV.talos_nodes, SID), {})
    kinds = [(type(s).__name__, getattr(s, "argv", ("",))[:2]) for s in plan.steps]
    assert kinds[0] == ("Cmd", ("flux", "suspend"))
    assert kinds[1] == ("Cmd", ("talosctl", "health"))  # pre-check
    upgrades = [s for s in plan.steps if isinstance(s, Cmd) and s.argv[1] == "upgrade"]
    assert [flag(list(s.argv), "--nodes") for s in upgrades] == [
        "127.0.0.90",
        "127.0.0.91",
        "127.0.0.96",
        "127.0.0.92",
        "127.0.0.97",
        "127.0.0.98",
    ]
    assert all(flag(list(s.argv), "--image") == images[90] for s in upgrades)
    # after every upgrade comes a health gate, before the next node's marker
    for i, s in enumerate(plan.steps):
        if isinstance(s, Cmd) and s.argv[1] == "upgrade":
            gate = plan.steps[i + 1]
            assert isinstance(gate, Cmd) and gate.argv[1] == "health"
            assert flag(list(gate.argv), "--nodes") != flag(list(s.argv), "--nodes")
    assert [list(s.argv[:3]) for s in plan.finally_steps if isinstance(s, Cmd)] == [
        ["flux", "resume", "kustomization"]
    ]
    assert sum(isinstance(s, Local) for s in plan.steps) == 6
    assert_argv_valid(cmds(plan))


def test_upgrade_skips_nodes_already_there_and_no_flux() -> None:
    images = {90: f"r/metal-installer/{SID}:v1.13.9", 92: f"r/metal-installer/{SID}:v1.13.9"}
    facts = {
        90: NodeFacts(90, "domum-cp1", "127.0.0.90", version="v1.13.9", schematic=SID),
        92: NodeFacts(92, "domum-xr2", "127.0.0.92", version="v1.13.8", schematic=SID),
    }
    plan = P.plan_upgrade(INV, images, {90: SID, 92: SID}, facts, suspend_flux=False)
    upgraded = [
        flag(list(s.argv), "--nodes")
        for s in plan.steps
        if isinstance(s, Cmd) and s.argv[1] == "upgrade"
    ]
    assert upgraded == ["127.0.0.92"]
    assert not plan.finally_steps and all(
        s.argv[0] != "flux" for s in plan.steps if isinstance(s, Cmd)
    )
    nothing = P.plan_upgrade(INV, {90: images[90]}, {90: SID}, facts)
    assert nothing.steps == [] and not nothing.finally_steps
    assert "nothing to do" in nothing.notes[-1]


# `flux get kustomizations --all-namespaces` of flux v2.9 as printed (tablewriter: every cell padded
# and followed by a tab; hex truncated to 8 digits; REVISION empty before the first apply).
GET_KS_ALL = (
    "NAMESPACE  \tNAME          \tREVISION          \tSUSPENDED\tREADY  \tMESSAGE                              \t\n"
    "flux-system\tflux-system   \tmain@sha1:3f2e9c1d\tFalse    \tTrue   \tApplied revision: main@sha1:3f2e9c1d\t\n"
    "flux-system\tinfrastructure\tmain@sha1:3f2e9c1d\tFalse    \tTrue   \tApplied revision: main@sha1:3f2e9c1d\t\n"
    "apps       \tmedia         \t                  \tTrue     \tFalse  \tkustomization path not found: ./x   \t\n"
    "apps       \tweb           \tmain@sha1:3f2e9c1d\tFalse    \tUnknown\tReconciliation in progress          \t\n"
)
# flux v0.x order, per namespace (no NAMESPACE column), tabs expanded by a terminal copy
GET_KS_OLD = (
    "NAME            READY   MESSAGE                         REVISION        SUSPENDED\n"
    "flux-system     True    Applied revision: main/0e1f9c5  main/0e1f9c5    False\n"
    "apps            False   kustomization path not found                    True\n"
)


def test_parse_kustomizations_real_tables() -> None:
    assert F.parse_kustomizations(GET_KS_ALL) == [
        Kustomization("flux-system", "flux-system", False, "True"),
        Kustomization("flux-system", "infrastructure", False, "True"),
        Kustomization("apps", "media", True, "False"),
        Kustomization("apps", "web", False, "Unknown"),
    ]
    assert F.parse_kustomizations(GET_KS_OLD, namespace="flux-system") == [
        Kustomization("flux-system", "flux-system", False, "True"),
        Kustomization("flux-system", "apps", True, "False"),
    ]
    assert F.parse_kustomizations("") == []  # "no Kustomization objects found" goes to stderr
    with pytest.raises(ValueError, match="not a flux kustomizations table"):
        F.parse_kustomizations("error: the server could not find the requested resource\n")
    with pytest.raises(ValueError, match="unreadable"):
        F.parse_kustomizations("NAME\tSUSPENDED\t\nx\tmaybe\t\n")


def test_probe_kustomizations_reads_all_namespaces_and_reports_failure() -> None:
    import subprocess

    seen: list[list[str]] = []

    def ok(argv: object) -> subprocess.CompletedProcess[str]:
        seen.append(list(argv))  # type: ignore[call-overload]
        return subprocess.CompletedProcess(argv, 0, GET_KS_ALL, "")

    def down(argv: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(
            argv, 1, "", '✗ Get "https://127.0.0.90:6443": dial tcp: connection refused\n'
        )

    found, err = F.probe_kustomizations(INV, ok)
    assert err == "" and [k.ref for k in found or []][-1] == "apps/web"
    assert seen[0][:4] == ["flux", "get", "kustomizations", "--all-namespaces"]
    assert_argv_valid(seen)
    assert F.probe_kustomizations(INV, down) == (
        None,
        '✗ Get "https://127.0.0.90:6443": dial tcp: connection refused',
    )
    junk = lambda argv: subprocess.CompletedProcess(argv, 0, "garbage\n", "")  # noqa: E731
    found, err = F.probe_kustomizations(INV, junk)
    assert found is None and "not a flux kustomizations table" in err


def _upgrade_all(ks: list[Kustomization] | None, err: str = "") -> Plan:
    images = {i: f"factory.talos.dev/metal-installer/{SID}:v1.13.9" for i in INV.talos_nodes}
    return P.plan_upgrade(
        INV, images, dict.fromkeys(INV.talos_nodes, SID), {}, kustomizations=ks, flux_error=err
    )


def test_upgrade_suspends_only_what_reconciles_and_resumes_exactly_that() -> None:
    plan = _upgrade_all(F.parse_kustomizations(GET_KS_ALL))
    flux_steps = [s for s in plan.steps if isinstance(s, Cmd) and s.argv[0] == "flux"]
    want = [("flux-system", "flux-system"), ("infrastructure", "flux-system"), ("web", "apps")]
    assert [(s.argv[3], flag(list(s.argv), "--namespace")) for s in flux_steps] == want
    assert all(s.argv[1:3] == ("suspend", "kustomization") for s in flux_steps)
    assert plan.steps[: len(want)] == flux_steps  # before the pre-check and any node
    resumes = [s for s in plan.finally_steps if isinstance(s, Cmd)]
    assert [(s.argv[1], s.argv[3], flag(list(s.argv), "--namespace")) for s in resumes] == [
        ("resume", n, ns) for n, ns in want
    ]
    assert not any("--all" in s.argv for s in [*flux_steps, *resumes])
    assert "Flux: already suspended, left suspended: apps/media" in plan.notes
    assert_argv_valid(cmds(plan))


@pytest.mark.parametrize(
    ("ks", "why"),
    [
        ([Kustomization("apps", "media", True)], "every one is already suspended"),
        ([], "none found"),
    ],
)
def test_upgrade_with_nothing_to_suspend_plans_no_flux(ks: list[Kustomization], why: str) -> None:
    plan = _upgrade_all(ks)
    assert not plan.finally_steps and all(
        s.argv[0] != "flux" for s in plan.steps if isinstance(s, Cmd)
    )
    assert any(why in n and "no suspend/resume planned" in n for n in plan.notes)
    assert sum(isinstance(s, Local) for s in plan.steps) == 6  # the upgrade itself is unchanged


def test_upgrade_without_a_listing_plans_all_and_says_so() -> None:
    plan = _upgrade_all(None, "dial tcp 127.0.0.90:6443: connection refused")
    (suspend,) = [s for s in plan.steps if isinstance(s, Cmd) and s.argv[0] == "flux"]
    (resume,) = plan.finally_steps
    assert suspend.argv[1:4] == ("suspend", "kustomization", "--all")
    assert isinstance(resume, Cmd) and resume.argv[1:4] == ("resume", "kustomization", "--all")
    (note,) = [n for n in plan.notes if "not listed" in n]
    assert "connection refused" in note and "planned `--all`" in note
    assert_argv_valid(cmds(plan))


def test_etcd_snapshot_plan_verifies_before_final_name() -> None:
    plan = P.plan_etcd_snapshot(INV, "backups/etcd.db")
    snap = next(s for s in plan.steps if isinstance(s, Cmd))
    part = snap.argv[-1]
    assert part == "backups/.etcd.db.unverified" and snap.argv[1:3] == ("etcd", "snapshot")
    verify = plan.steps[-1]
    assert isinstance(verify, Local) and verify.args == {"part": part, "out": "backups/etcd.db"}
    assert isinstance(plan.finally_steps[0], Local) and plan.finally_steps[0].args["path"] == part
    with pytest.raises(ConfigError, match="control planes only"):
        P.plan_etcd_snapshot(INV, "x.db", 92)


def test_every_planned_argv_passes_the_contract() -> None:
    plans = [
        P.plan_apply(INV, INV.talos_nodes, insecure=True),
        P.plan_apply(INV, INV.talos_nodes, mode="try"),
        P.plan_bootstrap(INV, None),
        P.plan_kubeconfig(INV, "clusterconfig/kubeconfig"),
        P.plan_health(INV, "5m"),
        P.plan_upgrade_k8s(INV),
        P.plan_etcd_snapshot(INV, "x.db", 96),
    ]
    argvs = [a for p in plans for a in cmds(p)]
    assert len(argvs) == 18
    assert_argv_valid(argvs)
    assert all(
        flag(a, "--talosconfig") and flag(a, "--nodes") and flag(a, "--endpoints") for a in argvs
    )


# --- the generic finally_steps of plan.py/run.py -------------------------------------------------


def _local_plan(fail: bool) -> tuple[Plan, list[str]]:
    seen: list[str] = []
    plan = Plan("t").add(Local("a"), Local("boom" if fail else "a"), Local("a"))
    plan.finally_steps.append(Local("cleanup"))
    return plan, seen


@pytest.mark.parametrize("fail", [False, True])
def test_finally_steps_always_run(fail: bool) -> None:
    plan, seen = _local_plan(fail)

    def boom(_: object) -> None:
        raise CommandFailed("node never became healthy")

    ex = Executor(
        handlers={
            "a": lambda _: seen.append("a"),
            "boom": boom,
            "cleanup": lambda _: seen.append("cleanup"),
        }
    )
    if fail:
        with pytest.raises(CommandFailed, match="never became healthy"):
            ex.execute(plan)
        assert seen == ["a", "cleanup"]
    else:
        ex.execute(plan)
        assert seen == ["a", "a", "a", "cleanup"]


def test_failing_cleanup_does_not_hide_first_error_and_fails_a_good_run() -> None:
    def boom(_: object) -> None:
        raise DomumError("cleanup broke")

    plan = Plan("t").add(Local("ok"))
    plan.finally_steps.append(Local("boom"))
    with pytest.raises(DomumError, match="cleanup broke"):
        Executor(handlers={"ok": lambda _: None, "boom": boom}).execute(plan)


def test_finally_steps_in_json_and_text() -> None:
    from domum_tasks.talos.ops.glue import handlers

    plan = P.plan_etcd_snapshot(INV, "/b/e.db")
    items = json.loads(plan.to_json())
    assert items[-1] == {
        "kind": "local",
        "action": "talos.remove",
        "finally": True,
        "args": {"path": "/b/.e.db.unverified"},
        "desc": "never leave an unverified snapshot behind",
    }
    assert "always, even after a failure" in plan.render_text()
    out = io.StringIO()  # the dry-run's executor has the real run's handlers, as every task's
    Executor(dry_run=True, json_out=True, out=out, handlers=handlers()).execute(plan)
    assert json.loads(out.getvalue())[-1]["finally"] is True
