"""Plans as data: the step types every planner returns, and their text and JSON renderings.

The JSON form is a fixed interface that other tools read:

    {"kind": "cmd",   "argv": [...]}
    {"kind": "ssh",   "host": "...", "command": "..."}
    {"kind": "pve",   "method": "GET|POST|PUT|DELETE", "path": "/nodes/...", "params": {...}}
    {"kind": "write", "path": "...", "mode": "0600", "bytes": N}
    {"kind": "wait",  "what": "...", "deadline_s": N}
    {"kind": "local", "action": "...", "args": {...}}
    {"kind": "fanout", "parallel": N, "lanes": [[step, ...], ...]}
    {"kind": "job",   "name": "...", "deadline_s": N, "steps": [step, ...]}

Every step may also carry "desc" (a human summary) and "destructive": true. Secrets are masked
in every rendering: pass the secret values to `render_text`/`to_json` (or use `Plan.secrets`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

MASK = "********"

HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]


@dataclass(frozen=True)
class Cmd:
    """A local command, as an argv list (never a shell string)."""

    argv: tuple[str, ...]
    desc: str = ""
    timeout_s: float = 600.0
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    destructive: bool = False
    # Exit codes that count as success (e.g. "already bootstrapped" handled by the caller).
    ok_codes: tuple[int, ...] = (0,)
    # Substrings of stderr that make a failing exit count as success, for idempotent answers a
    # tool reports as errors (talosctl bootstrap: "AlreadyExists").
    ok_stderr: tuple[str, ...] = ()
    # False: a failing exit (or a timeout) is the step's outcome, as data, not an error
    # (restic's exit 3, `flux diff`'s exit 1 for drift). The caller reads StepResult.ok/value.
    check: bool = True
    # Keep inheritable descriptors open in the child (backup's flock: no second run starts
    # while anything this run started still lives).
    inherit_fds: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "cmd", "argv": list(self.argv)}


@dataclass(frozen=True)
class Ssh:
    """A command run on an inventory host over strict SSH."""

    host: str
    command: str
    desc: str = ""
    user: str = ""
    port: int = 22
    timeout_s: float = 300.0
    destructive: bool = False
    # False: a failed or unreachable host is the step's outcome (StepResult.ok False), not an error.
    check: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "ssh", "host": self.host, "command": self.command}


@dataclass(frozen=True)
class PveCall:
    """A Proxmox VE API call; `path` is relative to /api2/json."""

    method: HttpMethod
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    desc: str = ""
    destructive: bool = False
    # True when the call returns a UPID whose task must end with exitstatus OK.
    wait_task: bool = False
    # False: a refused call, or a task that ends other than OK, is the step's outcome
    # (StepResult.ok False, value = the task's final status and log), not an error (vzdump's
    # "WARNINGS: n", one guest's failed backup among several).
    check: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "pve",
            "method": self.method,
            "path": self.path,
            "params": dict(self.params),
        }


@dataclass(frozen=True)
class Write:
    """Write a file atomically (temp file in the same directory, then rename)."""

    path: str
    content: bytes | str
    mode: int = 0o644
    desc: str = ""
    destructive: bool = False

    def data(self) -> bytes:
        return self.content.encode() if isinstance(self.content, str) else self.content

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "write",
            "path": self.path,
            "mode": f"{self.mode:04o}",
            "bytes": len(self.data()),
        }


@dataclass(frozen=True)
class Wait:
    """Poll `probe` (a Cmd, Ssh, PveCall, or a Local check that raises until its condition
    holds) until it succeeds or the deadline passes."""

    what: str
    deadline_s: float
    probe: Cmd | Ssh | PveCall | Local | None = None
    interval_s: float = 5.0
    desc: str = ""
    destructive: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "wait", "what": self.what, "deadline_s": self.deadline_s}
        if self.probe is not None:
            out["probe"] = self.probe.to_dict()
        return out


@dataclass(frozen=True)
class ResultOf:
    """In a Local step's args: the outcome of an earlier step of the same plan (0-based), so a
    step can act on what an earlier one produced (record a job's result, report a fan-out)
    and the plan still shows where its input comes from: {"result_of": N}."""

    index: int


@dataclass(frozen=True)
class Local:
    """An in-process action a namespace registers with the executor (run/) (download, flash, verify...).

    The planner names the action and its arguments; the namespace's executor does the work.
    """

    action: str
    args: Mapping[str, Any] = field(default_factory=dict)
    desc: str = ""
    destructive: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "local", "action": self.action, "args": dict(self.args)}


@dataclass(frozen=True)
class Fanout:
    """Lanes run side by side, at most `parallel` at once; each lane's steps in order, stopping
    at the lane's first failure. One lane failing never stops the others: every lane's results
    are the outcome (StepResult.value, a list per lane); the step is ok when every lane is."""

    lanes: tuple[tuple[Step, ...], ...]
    parallel: int = 5
    desc: str = ""

    @property
    def destructive(self) -> bool:
        return any(s.destructive for lane in self.lanes for s in lane)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "fanout",
            "parallel": self.parallel,
            "lanes": [[step_dict(s) for s in lane] for lane in self.lanes],
        }


@dataclass(frozen=True)
class Job:
    """Steps run in a process group of their own, in order, stopping at the first failure; the
    whole group (and everything it started) is killed when `deadline_s` passes. The outcome
    (status ok/failed/killed, a message, each step's result) is data: a job failing or hanging
    never stops the steps after it."""

    name: str
    steps: tuple[Step, ...]
    deadline_s: float
    desc: str = ""

    @property
    def destructive(self) -> bool:
        return any(s.destructive for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "job",
            "name": self.name,
            "deadline_s": self.deadline_s,
            "steps": [step_dict(s) for s in self.steps],
        }


Step: TypeAlias = Cmd | Ssh | PveCall | Write | Wait | Local | Fanout | Job


def substeps(step: Step) -> list[Step]:
    """The steps a step runs itself: a fan-out's lanes, a job's steps, a wait's probe."""
    match step:
        case Fanout():
            return [s for lane in step.lanes for s in lane]
        case Job():
            return list(step.steps)
        case Wait() if step.probe is not None:
            return [step.probe]
    return []


@dataclass
class Plan:
    """An ordered list of steps, plus what the planner assumed and why a plan may be empty."""

    title: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    # Run after `steps` even when one of them failed (e.g. resume Flux after an upgrade).
    finally_steps: list[Step] = field(default_factory=list)

    def add(self, *steps: Step) -> Plan:
        self.steps.extend(steps)
        return self

    def note(self, text: str) -> Plan:
        self.notes.append(text)
        return self

    @property
    def destructive(self) -> bool:
        return any(s.destructive for s in [*self.steps, *self.finally_steps])

    def to_json(self, secrets: Iterable[str] = ()) -> str:
        """Steps, then finally_steps (marked `"finally": true`), as one JSON array."""
        masked = [*self.secrets, *secrets]
        items = [step_dict(s, masked) for s in self.steps]
        items += [{**step_dict(s, masked), "finally": True} for s in self.finally_steps]
        return json.dumps(items, indent=2)

    def render_text(self, secrets: Iterable[str] = ()) -> str:
        return render_text(self, [*self.secrets, *secrets])


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value (longest first, so overlaps mask fully) with MASK."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _mask_obj(obj: Any, secrets: Sequence[str]) -> Any:
    if isinstance(obj, ResultOf):
        return {"result_of": obj.index}
    if isinstance(obj, str):
        return mask(obj, secrets)
    if isinstance(obj, list | tuple):
        return [_mask_obj(x, secrets) for x in obj]
    if isinstance(obj, dict):
        return {k: _mask_obj(v, secrets) for k, v in obj.items()}
    return obj


def step_dict(step: Step, secrets: Sequence[str] = ()) -> dict[str, Any]:
    d = step.to_dict()
    if step.desc:
        d["desc"] = step.desc
    if step.destructive:
        d["destructive"] = True
    return dict(_mask_obj(d, secrets))


def to_json(steps: Iterable[Step], secrets: Sequence[str] = ()) -> str:
    """The `--dry-run --json` output: a JSON array of steps, nothing else."""
    return json.dumps([step_dict(s, secrets) for s in steps], indent=2)


def _words(args: Mapping[str, Any]) -> str:
    """Arguments as a person reads them: `key=value`, a true flag as its bare name, lists
    comma-joined; unset values and false flags left out (never Python reprs like `x=None`)."""

    def shown(value: Any) -> str:
        if isinstance(value, ResultOf):
            return f"<result of step {value.index + 1}>"
        if isinstance(value, list | tuple | set):
            return ",".join(shown(v) for v in value)
        if isinstance(value, dict):
            return ",".join(f"{k}:{shown(v)}" for k, v in value.items())
        return str(value)

    out = []
    for key, value in args.items():
        if value is None or value is False or value == "":
            continue
        out.append(key if value is True else f"{key}={shown(value)}")
    return " ".join(out)


def describe(step: Step) -> str:
    """One line saying what a step does, as a person would read it."""
    import shlex

    match step:
        case Cmd():
            text = shlex.join(step.argv)
        case Ssh():
            text = f"ssh {step.host}: {step.command}"
        case PveCall():
            text = f"pve {step.method} {step.path} {_words(step.params)}".rstrip()
        case Write():
            text = f"write {step.path} (mode {step.mode:04o}, {len(step.data())} bytes)"
        case Wait():
            text = f"wait up to {step.deadline_s:g}s for {step.what}"
        case Local():
            text = f"{step.action} {_words(step.args)}".rstrip()
        case Fanout():
            inner = "; ".join(" && ".join(describe(s) for s in lane) for lane in step.lanes)
            text = f"on {len(step.lanes)} lane(s), {step.parallel} at once: {inner}"
        case Job():
            inner = "; ".join(describe(s) for s in step.steps)
            text = (
                f"job {step.name} (own process group, killed after {step.deadline_s:g}s): {inner}"
            )
    prefix = "!! " if step.destructive else ""
    return f"{prefix}{text}" + (f"    # {step.desc}" if step.desc else "")


def render_text(plan: Plan, secrets: Sequence[str] = ()) -> str:
    lines = [f"Plan: {plan.title}"]
    lines += [f"  note: {n}" for n in plan.notes]
    if not plan.steps:
        lines.append("  (nothing to do)")
    lines += [f"  {i:>2}. {describe(s)}" for i, s in enumerate(plan.steps, 1)]
    if plan.finally_steps:
        lines.append("  always, even after a failure:")
        first = len(plan.steps) + 1
        lines += [f"  {i:>2}. {describe(s)}" for i, s in enumerate(plan.finally_steps, first)]
    return mask("\n".join(lines), secrets)
