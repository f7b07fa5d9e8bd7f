"""Plans as data and the one executor: renderings, masking, dry-run, failures, waits, writes."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from domum_tasks.errors import CommandFailed, DomumError, Refused, ToolMissing
from domum_tasks.plan import MASK, Cmd, Local, Plan, PveCall, Ssh, Wait, Write
from domum_tasks.run import Executor, run_cmd, write_atomic

SECRET = "s3cr3t-token-value"


def sample_plan() -> Plan:
    return Plan(
        "sample",
        steps=[
            Cmd(["talosctl", "version", "--nodes", "127.0.0.90"], desc="probe"),
            Ssh("127.0.0.93", "uptime"),
            PveCall("POST", "/nodes/pve1/qemu/196/snapshot", {"snapname": "pre-upgrade"}),
            Write("/tmp/x", f"token: {SECRET}\n", mode=0o600),
            Wait("node ready", 30, probe=Cmd(["true"])),
            Local("flash", {"device": "/dev/sdz"}, destructive=True),
        ],
        secrets=[SECRET],
    )


def test_json_rendering_is_the_fixed_interface() -> None:
    steps = json.loads(sample_plan().to_json())
    assert [s["kind"] for s in steps] == ["cmd", "ssh", "pve", "write", "wait", "local"]
    assert steps[0]["argv"] == ["talosctl", "version", "--nodes", "127.0.0.90"]
    assert steps[1] == {"kind": "ssh", "host": "127.0.0.93", "command": "uptime"}
    assert steps[2] == {
        "kind": "pve",
        "method": "POST",
        "path": "/nodes/pve1/qemu/196/snapshot",
        "params": {"snapname": "pre-upgrade"},
    }
    assert steps[3]["mode"] == "0600"
    assert steps[4]["probe"] == {"kind": "cmd", "argv": ["true"]}
    assert steps[5]["destructive"] is True


def test_secrets_are_masked_in_every_rendering() -> None:
    plan = sample_plan()
    plan.steps.append(Cmd(["curl", "-H", f"Authorization: {SECRET}"]))
    plan.steps.append(PveCall("PUT", "/nodes/pve1/qemu/196/config", {"description": SECRET}))
    for text in (plan.to_json(), plan.render_text()):
        assert SECRET not in text
        assert MASK in text


def test_dry_run_prints_only_json_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "touched"
    plan = Plan("dry", [Cmd(["touch", str(marker)]), Write(str(tmp_path / "w"), "x")])
    out = io.StringIO()
    Executor(dry_run=True, json_out=True, out=out).execute(plan)
    assert json.loads(out.getvalue())[0]["argv"] == ["touch", str(marker)]
    assert not marker.exists() and not (tmp_path / "w").exists()


def test_dry_run_text_says_when_nothing_to_do() -> None:
    out = io.StringIO()
    Executor(dry_run=True, out=out).execute(Plan("idle", notes=["already in place"]))
    assert "note: already in place" in out.getvalue()
    assert "(nothing to do)" in out.getvalue()


def test_json_dry_run_says_its_assumptions_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    # Principle 2/3: the notes (assumed a fresh target, or why nothing is planned) must not be
    # lost with --json; stdout stays a bare JSON array, so they go to stderr, masked.
    plan = Plan("idle", notes=[f"host down; planned as for a fresh host (token {SECRET})"])
    Executor(dry_run=True, json_out=True, secrets=[SECRET]).execute(plan)
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    assert "domum: note: host down; planned as for a fresh host" in err
    assert SECRET not in err and MASK in err


def test_failed_command_gives_one_line_reason_and_stderr_tail() -> None:
    script = "import sys; [print(f'line {i}', file=sys.stderr) for i in range(30)]; sys.exit(3)"
    with pytest.raises(CommandFailed) as err:
        run_cmd([sys.executable, "-c", script])
    assert err.value.message.startswith("exit code 3: ")
    assert "line 29" in err.value.stderr_tail and "line 5\n" not in err.value.stderr_tail


def test_command_timeout_is_enforced() -> None:
    with pytest.raises(CommandFailed, match=r"timed out after 0.3s"):
        run_cmd([sys.executable, "-c", "import time; time.sleep(5)"], timeout_s=0.3)


def test_failure_messages_mask_secrets() -> None:
    with pytest.raises(CommandFailed) as err:
        run_cmd(
            [
                sys.executable,
                "-c",
                f"import sys; print('bad {SECRET}', file=sys.stderr); sys.exit(1)",
            ],
            secrets=[SECRET],
        )
    assert SECRET not in str(err.value)


def test_plan_secrets_are_masked_in_step_failures() -> None:
    # A plan carries its own secrets (flux's Git token); a failing step must not leak them even
    # when the Executor itself was built without any.
    leak = f"import sys; print('auth failed for {SECRET}', file=sys.stderr); sys.exit(1)"
    plan = Plan("leaky", [Cmd([sys.executable, "-c", leak])], secrets=[SECRET])
    with pytest.raises(CommandFailed) as err:
        Executor().execute(plan)
    assert SECRET not in str(err.value) and MASK in str(err.value)

    def handler(args: object) -> None:
        raise DomumError(f"upload refused: token {SECRET}", hint=f"check {SECRET}")

    plan = Plan("leaky", [Local("upload", {})], secrets=[SECRET])
    with pytest.raises(DomumError) as err2:
        Executor(handlers={"upload": handler}).execute(plan)
    assert SECRET not in str(err2.value)


def test_missing_command_is_a_clean_error() -> None:
    with pytest.raises(CommandFailed, match="command not found: no-such-tool-xyz"):
        run_cmd(["no-such-tool-xyz"])


def test_wait_gives_up_at_the_deadline() -> None:
    clock = [0.0]
    executor = Executor(sleep=lambda s: clock.__setitem__(0, clock[0] + s), clock=lambda: clock[0])
    plan = Plan("wait", [Wait("never", deadline_s=20, interval_s=5, probe=Cmd(["false"]))])
    with pytest.raises(DomumError, match=r"gave up after 20s waiting for never"):
        executor.execute(plan)
    assert clock[0] <= 20


def test_wait_returns_when_probe_succeeds(tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    flag.write_text("")
    plan = Plan("wait", [Wait("flag", deadline_s=5, probe=Cmd(["test", "-e", str(flag)]))])
    results = Executor().execute(plan)
    assert results[0].ok


def test_destructive_plan_without_yes_and_without_tty_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    plan = Plan("wipe", [Local("flash", {"device": "/dev/sdz"}, destructive=True)])
    with pytest.raises(Refused, match="pass --yes"):
        Executor(handlers={"flash": lambda args: pytest.fail("must not run")}).execute(plan)


def test_destructive_plan_runs_with_yes() -> None:
    seen: list[object] = []
    plan = Plan("wipe", [Local("flash", {"device": "/dev/sdz"}, destructive=True)])
    Executor(handlers={"flash": seen.append}).execute(plan, yes=True)
    assert seen == [{"device": "/dev/sdz"}]


def test_write_atomic_sets_mode_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "secret.yaml"
    write_atomic(target, b"a: 1\n", mode=0o600)
    assert target.read_bytes() == b"a: 1\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["secret.yaml"]


def test_missing_known_tool_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing, match="talosctl not found") as err:
        run_cmd(["talosctl", "version"])
    assert "inv tools.install" in str(err.value)


def test_known_tool_is_found_in_the_bin_dir_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "flux"
    tool.write_text("#!/bin/sh\necho from-bin-dir\n")
    tool.chmod(0o755)
    monkeypatch.setenv("DOMUM_BIN_DIR", str(bin_dir))
    assert run_cmd(["flux", "version"]).stdout == "from-bin-dir\n"


def test_commands_run_from_the_repo_root_wherever_inv_was_started(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """clusterconfig/talosconfig in an argv means the repo's, even when inv runs in cluster/."""
    root = tmp_path / "repo"
    (root / "cluster").mkdir(parents=True)
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(root))
    monkeypatch.chdir(root / "cluster")
    assert run_cmd(["pwd"]).stdout.strip() == str(root)
    assert run_cmd(["pwd"], cwd=str(tmp_path)).stdout.strip() == str(tmp_path)


def test_text_plan_shows_no_python_reprs() -> None:
    from domum_tasks.plan import Local, Plan, PveCall, render_text

    plan = Plan("t").add(
        Local(
            "write-image",
            {
                "image": "x.img",
                "sha256": None,
                "force": False,
                "verify": True,
                "endpoints": ["127.0.0.90", "127.0.0.91"],
            },
        ),
        PveCall("POST", "/nodes/pve1/qemu", {"vmid": 190, "agent": 1}),
    )
    text = render_text(plan)
    assert "1. write-image image=x.img verify endpoints=127.0.0.90,127.0.0.91" in text
    assert "2. pve POST /nodes/pve1/qemu vmid=190 agent=1" in text
    for repr_ in ("None", "False", "True", "['", "{'"):
        assert repr_ not in text
