"""The executor's step kinds that carry outcomes as data: unchecked commands, fan-out lanes and
jobs in their own process group. Real processes (sh, sleep), no stand-ins."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from domum_tasks.errors import DomumError
from domum_tasks.plan import Cmd, Fanout, Job, Local, Plan, Ssh, Wait
from domum_tasks.run import Executor, StepResult
from domum_tasks.run.jobs import GRACE_S, INTERRUPT_GRACE_S


def sh(script: str, **kw: object) -> Cmd:
    return Cmd(("sh", "-c", script), **kw)  # type: ignore[arg-type]


def test_unchecked_command_exit_code_is_data() -> None:
    res = Executor().run_step(sh("echo out; echo err >&2; exit 3", check=False))
    assert (res.ok, res.value, res.stdout, res.stderr) == (False, 3, "out\n", "err\n")
    ok = Executor().run_step(sh("exit 3", check=False, ok_codes=(0, 3)))
    assert ok.ok and ok.value == 3


def test_unchecked_command_timeout_is_data_and_checked_one_raises() -> None:
    res = Executor().run_step(sh("sleep 5", check=False, timeout_s=0.2))
    assert not res.ok and res.value is None and "timed out after 0.2s" in res.stderr
    with pytest.raises(DomumError, match="exit code 3"):
        Executor().run_step(sh("exit 3"))


def test_fanout_lanes_stop_at_their_own_first_failure_only(tmp_path: Path) -> None:
    mark = tmp_path / "after-failure"
    step = Fanout(
        (
            (sh("echo a1"), sh("echo a2")),
            (sh("exit 7"), sh(f"touch {mark}")),
            (sh("echo c1"),),
        ),
        parallel=2,
    )
    res = Executor().run_step(step)
    lanes = res.value
    assert not res.ok
    assert [[r.stdout for r in lane] for lane in (lanes[0], lanes[2])] == [
        ["a1\n", "a2\n"],
        ["c1\n"],
    ]
    assert [r.ok for r in lanes[1]] == [False] and lanes[1][0].value == 7
    assert not mark.exists()  # the failed lane stopped; the others ran to the end


def test_fanout_runs_lanes_side_by_side() -> None:
    lanes = tuple((sh("sleep 0.5"),) for _ in range(4))
    start = time.monotonic()
    assert Executor().run_step(Fanout(lanes, parallel=4)).ok
    assert time.monotonic() - start < 1.5  # four half-second lanes at once, not one after another


def test_job_runs_in_its_own_process_group_and_reports_each_step(tmp_path: Path) -> None:
    out = tmp_path / "pgid"
    res = Executor().run_step(Job("j", (sh(f"ps -o pgid= -p $$ > {out}"), sh("echo done")), 30))
    assert res.ok and res.value["status"] == "ok"
    assert [r.stdout for r in res.value["results"]] == ["", "done\n"]
    assert int(out.read_text()) != os.getpgrp()


def test_job_stops_at_first_failure_with_its_message(tmp_path: Path) -> None:
    mark = tmp_path / "never"
    res = Executor().run_step(Job("j", (sh("echo broken >&2; exit 2"), sh(f"touch {mark}")), 30))
    assert not res.ok and res.value["status"] == "failed"
    assert "exit code 2" in res.value["message"] and not mark.exists()


def test_job_past_its_deadline_is_killed_with_everything_it_started(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    # The grandchild is in the job's group and must die with it. As an asynchronous command of
    # a non-interactive sh it ignores SIGINT (POSIX), so it outlives the first signal: the
    # executor escalates to SIGTERM after the interrupt grace (restic's time to drop its lock).
    step = Job("hang", (sh(f"sleep 60 & echo $! > {pidfile}; wait"),), deadline_s=1)
    start = time.monotonic()
    res = Executor().run_step(step)
    assert time.monotonic() - start < 1 + INTERRUPT_GRACE_S + GRACE_S
    assert res.value["status"] == "killed" and "deadline of 1s" in res.value["message"]
    stat = Path(f"/proc/{int(pidfile.read_text())}/stat")
    time.sleep(0.2)
    # gone, or a zombie nobody has reaped yet: either way no longer running
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_job_local_steps_return_json_values() -> None:
    ex = Executor(handlers={"count": lambda args: {"n": args["n"] + 1}})
    res = ex.run_step(Job("j", (Local("count", {"n": 1}),), 30))
    assert res.value["results"][0].value == {"n": 2}


@pytest.mark.parametrize(
    "step, missing",
    [
        (Local("nobody.handles"), "no handler registered for action 'nobody.handles'"),
        (Fanout(((Local("deep.inside"),),)), "'deep.inside'"),
        (Job("j", (Ssh("h", "true"),), 5), "no SSH runner"),
        (Wait("w", 5, probe=Ssh("h", "true")), "no SSH runner"),
    ],
)
def test_dry_run_fails_on_a_step_no_handler_can_run(step: object, missing: str) -> None:
    plan = Plan("p", [step])  # type: ignore[list-item]
    with pytest.raises(DomumError, match=missing):
        Executor(dry_run=True).execute(plan)


def test_local_handler_may_return_its_own_result() -> None:
    def handler(args: object) -> StepResult:
        return StepResult(Local("x"), ok=False, stderr="no")

    res = Executor(handlers={"x": handler}).run_step(Local("x"))
    assert not res.ok and res.stderr == "no"


def test_a_local_step_gets_the_result_of_an_earlier_step() -> None:
    from domum_tasks.plan import ResultOf

    seen: list[object] = []
    plan = Plan("p", [sh("echo 42", check=False), Local("record", {"of": ResultOf(0), "x": 1})])
    assert json.loads(plan.to_json())[1]["args"] == {"of": {"result_of": 0}, "x": 1}
    results = Executor(handlers={"record": lambda args: seen.append(args)}).execute(plan)
    assert seen[0]["of"].stdout == "42\n" and seen[0]["x"] == 1  # type: ignore[index]
    assert results[1].step is plan.steps[1]  # the planned step is what was recorded


def test_unchecked_failure_is_the_outcome_and_checked_one_raises() -> None:
    with pytest.raises(DomumError, match="exit code 4"):
        Executor().run_step(sh("echo boom >&2; exit 4"))
    outcome = Executor().run_step(sh("exit 4", check=False))
    assert not outcome.ok and outcome.value == 4
