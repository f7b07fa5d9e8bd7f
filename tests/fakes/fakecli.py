#!/usr/bin/env python3
"""Strict stand-in for `talosctl` (v1.13) and `flux` (v2.9.4), built from ../shared/contracts at run time.

How it is used
--------------
Tests do not call this file directly: the `fake_cli` fixture (tests/fixtures/fake_cli.py) writes
two tiny wrapper scripts, `talosctl` and `flux`, into a temp bin dir put first on PATH. Each wrapper
runs `python fakecli.py <prog> "$@"`. (A symlink named talosctl/flux pointing here works too.)

Strictness: every argv is parsed with the contract checker `check_argv.py` against
`talosctl-cli.json --talos-version v1.13` and `flux-cli.json`, from `tests/cli_contract/`: the subset of
`../shared/contracts` for the commands Domum uses (tests/cli_contract/commands.txt; regenerate with
`.venv/bin/python scripts/gen_cli_contract.py`), so the stand-in is as strict on a user's clone
without `../shared`. `DOMUM_CONTRACTS_DIR` points it at another contract directory (e.g. the full one).
A command missing from commands.txt is rejected as unknown: add its line and regenerate. Anything the checker calls an error is rejected as cobra would, on stderr with
exit 1: `Error: unknown command "x" for "talosctl"`, `Error: unknown flag: --foo`,
`Error: unknown shorthand flag: 'x' in -x`, `Error: flag needs an argument: --to`,
`Error: invalid argument "600" for "--wait-timeout" flag: ...`, `Error: accepts 1 arg(s), received 0`.
That covers client flags on offline commands (`gen`, `validate`, ...) and flags placed before the
subcommand that swallow it. A group command without (or with an unknown) subcommand makes real cobra
print help and exit 0, a silent no-op; the stand-in prints the help and exits 1 so the bug shows.
Deprecated flags print cobra's "Flag --x has been deprecated" warning and run.

Environment
-----------
- `DOMUM_FAKECLI_LOG`: JSON-lines file; every invocation appends
  `{"argv": [prog, ...], "cwd": ..., "exit": N, "ok": bool, "error": "..."}` (argv[0] is the bare name).
- `DOMUM_FAKECLI_STATE`: JSON file driving behaviour (missing file = defaults), updated in place under
  a lock (bootstrap sets `bootstrapped`, flux suspend/resume flip `suspended`, ...). Keys:
    bootstrapped: bool                   bootstrap fails with AlreadyExists when true
    unhealthy: [ip, ...]                 health fails if any named node is listed; machinestatus not ready
    unhealthy_after: {"upgrade": [ip]}   a node becomes unhealthy once that command ran against it
    fail: {"upgrade": "msg" | {"message": "...", "exit": 1, "times": N, "nodes": [ip]}}
                                         keyed by command path ("etcd snapshot", "flux check",
                                         "talosctl upgrade"); `times` fails only the first N calls
    talos_version / kubernetes_version   reported by version / get members (default v1.13.9 / 1.35.4)
    versions: {ip: tag}                  per-node Talos version (upgrade sets it from the image tag)
    schematics: {ip: id}                 booted Image Factory schematic: `get extensions` lists it as
                                         the "schematic" pseudo-extension; upgrade to a factory
                                         installer `<reg>/<mode>-installer/<id>:<tag>` sets it
    extensions: [{"name", "version"}]    installed system extensions (every node)
    etcd_down: [ip]                      `etcd members` fails on these even when bootstrapped
                                         (`etcd members` prints the real table only once bootstrapped)
    members: [{"hostname", "ip", "type"}]  for `get members`; default: one per node named with -n
    kustomizations: [{"name", "namespace", "ready", "suspended", "revision"}]   for flux
    etcd_snapshot_source: path           copy this file for `etcd snapshot` (e.g. a real etcd one)
    cluster_name / k8s_endpoint          used in kubeconfig (default: talosconfig context / https://node:6443)
    maintenance: {ip: {"disks": [...], "links": [...]}}   nodes without a config: `get disks|links`
                                         answer only with --insecure (talos_resources.py)
  Opt-in node lifecycle (talos_lifecycle.py; nodes it does not name behave as above):
    nodes: {ip: "absent"|"maintenance"|"configured"}   absent: every call fails with gRPC's
                                         connection refused; maintenance: only --insecure works
                                         (the talosconfig's CA fails with x509 unknown authority),
                                         `apply-config --insecure` makes it configured; configured:
                                         --insecure fails with tls "certificate required"
    reboot_calls: N                      after that apply, the next N calls reaching the node are
                                         refused (it reboots); `rebooting: {ip: N}` counts down
    bootstrap_count: N                   set by the stand-in: successful bootstraps
    healthy_after_calls: N               `health` fails its first N calls; with `nodes` set it also
                                         fails until bootstrapped and every named node configured
  Opt-in flux lifecycle (flux_lifecycle.py):
    flux_installed: false                `flux get kustomizations|helmreleases` fail (no CRDs) until
                                         `flux bootstrap`, which shows `kustomizations`/`helmreleases`
                                         (or the defaults) not yet reconciled
    ready_after_polls: N                 the first N `flux get <kind>` after bootstrap: READY False,
                                         "waiting to be reconciled"; then Ready
    failing: {name: "message"}           that object stays READY False with that MESSAGE
  Holding a call (for kill tests: a deterministic moment inside a command):
    hold: {"<prog> <command path>": {"file": F, "when": "before"|"after"}}   that command writes
                                         F.held (its pid) and waits until F exists (at most
                                         120 s, then exit 1): "before" it does anything,
                                         "after" its effect is saved (outside the state lock)
- `DOMUM_FAKECLI_HOME`: stands in for $HOME (~/.talos/config, ~/.kube/config), so the real home is
  never touched. `TALOSCONFIG` is honoured like the real CLI.

Online talosctl commands need a talosconfig (from --talosconfig, TALOSCONFIG or the fake home) that
exists and has the current context, endpoints (-e or the context's) and nodes (-n or the context's),
unless --insecure is given; otherwise they fail with talosctl's messages.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONTRACTS = Path(os.environ.get("DOMUM_CONTRACTS_DIR") or HERE.parent / "cli_contract")
# The Talos config schema is not in the subset (too big, and upstream data): the full contracts
# directory has it; without it `validate`/`gen config` skip the schema check (see fake_talos).
SHARED_CONTRACTS = HERE.parents[2] / "shared" / "contracts"
TALOS_CONTRACT_VERSION = "v1.13"
PROGS = ("talosctl", "flux")

sys.path.insert(0, str(HERE))


class Fail(Exception):
    """A command error: printed as `Error: <msg>` (cobra style), exit code `code`."""

    def __init__(self, msg: str, code: int = 1, raw: bool = False) -> None:
        super().__init__(msg)
        self.code = code
        self.raw = raw


@dataclass
class Call:
    prog: str
    path: str  # command path without the program, e.g. "etcd snapshot"
    flags: dict[str, list[str]]  # long flag name -> values ("true"/"false" for bools)
    pos: list[str]
    state: dict[str, Any]
    cwd: str
    dirty: bool = False
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    def flag(self, name: str, default: str | None = None) -> str | None:
        vals = self.flags.get(name)
        return vals[-1] if vals else default

    def multi(self, name: str) -> list[str]:
        """A `strings` flag (pflag splits each value on commas; repeats add up)."""
        return [x for v in self.flags.get(name, []) for x in v.split(",") if x]

    def bool(self, name: str, default: bool = False) -> bool:
        v = self.flag(name)
        return default if v is None else v in ("1", "t", "T", "true", "TRUE", "True")

    def print(self, text: str = "") -> None:
        self.out.append(text + "\n")

    def eprint(self, text: str = "") -> None:
        self.err.append(text + "\n")

    def set(self, key: str, value: Any) -> None:
        self.state[key] = value
        self.dirty = True

    def path_of(self, p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(self.cwd, p)

    def home(self) -> str:
        return os.environ.get("DOMUM_FAKECLI_HOME") or os.path.join(
            os.path.dirname(os.environ.get("DOMUM_FAKECLI_STATE") or "/tmp/fakecli"), "home"
        )

    def injected_failure(self, nodes: list[str] | None = None) -> None:
        """Raise the failure configured in state["fail"] for this command, if any.

        Without `nodes`: specs that name no nodes; with `nodes`: specs whose nodes intersect."""
        fails = self.state.get("fail") or {}
        for key in (f"{self.prog} {self.path}", self.path):
            spec = fails.get(key)
            if spec is None:
                continue
            spec = spec if isinstance(spec, dict) else {"message": str(spec)}
            # run() checks node-less specs before the handler; handlers check node-scoped ones
            if bool(spec.get("nodes")) != (nodes is not None):
                continue
            if nodes is not None and not set(spec["nodes"]) & set(nodes):
                continue
            if spec.get("times") is not None:
                counts = self.state.setdefault("fail_counts", {})
                if counts.get(key, 0) >= int(spec["times"]):
                    return
                counts[key] = counts.get(key, 0) + 1
                self.dirty = True
            raise Fail(spec.get("message", f"injected failure of {key}"), int(spec.get("exit", 1)))


# ---------------------------------------------------------------- contract parsing
def _checker() -> Any:
    if str(CONTRACTS) not in sys.path:
        sys.path.insert(0, str(CONTRACTS))
    import check_argv  # the shared contract checker (stdlib only)

    return check_argv


def _collect(cli: Any, path: str, args: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """pflag parse of an argv the checker accepted: flag values by long name, and positionals."""
    flags = cli.flags(path)
    vals: dict[str, list[str]] = {}
    pos: list[str] = []
    i = 0
    while i < len(args):
        s = args[i]
        i += 1
        if s == "--":
            pos.extend(args[i:])
            break
        if not s.startswith("-") or s == "-":
            pos.append(s)
            continue
        if s.startswith("--"):
            name, eq, value = s.partition("=")
            info = flags.get(name) or {}
            if not eq:
                if info.get("takes_value") and i < len(args):
                    value, i = args[i], i + 1
                else:
                    value = "true"
            vals.setdefault(info.get("long", name), []).append(value)
            continue
        j = 1
        while j < len(s):
            info = flags.get("-" + s[j]) or {}
            long = info.get("long", "-" + s[j])
            rest = s[j + 1 :]
            if info.get("takes_value"):
                if rest:
                    value = rest[1:] if rest.startswith("=") else rest
                elif i < len(args):
                    value, i = args[i], i + 1
                else:
                    value = ""
                vals.setdefault(long, []).append(value)
                break
            if rest.startswith("="):
                vals.setdefault(long, []).append(rest[1:])
                break
            vals.setdefault(long, []).append("true")
            j += 1
    return vals, pos


_DURATION_HINT = {
    "duration": "time: missing unit in duration",
    "bool": "strconv.ParseBool: parsing",
}


def cobra_message(prog: str, res: dict[str, Any]) -> str:
    """Turn the checker's first error into the message cobra/pflag would print."""
    kinds = {
        "unknown_command",
        "unknown_subcommand",
        "missing_subcommand",
        "unknown_flag",
        "missing_value",
        "bad_value",
        "bad_arg_count",
        "swallowed_subcommand",
        "bad_input",
    }
    kind, msg = next((k, m) for k, m in res["problems"] if k in kinds)
    cmd = res.get("command") or prog
    if kind == "unknown_command":
        m = re.match(r"'([^']*)' is not a", msg)
        word = m.group(1) if m else msg
        if " is not in talosctl" in msg:
            word = cmd.split()[-1]
            return f'unknown command "{word}" for "{" ".join(cmd.split()[:-1])}"'
        return f'unknown command "{word}" for "{prog}"\nRun \'{prog} --help\' for usage.'
    if kind in ("unknown_flag", "swallowed_subcommand"):
        m = re.match(r"shorthand (-\S) \(in '([^']*)'\)", msg)
        if m:
            return f"unknown shorthand flag: '{m.group(1)[1]}' in {m.group(2)}"
        return f"unknown flag: {msg.split()[0]}"
    if kind == "missing_value":
        flag = msg.split()[0]
        return (
            f"flag needs an argument: {flag}"
            if flag.startswith("--")
            else (f"flag needs an argument: '{flag[1]}' in {flag}")
        )
    if kind == "bad_value":
        m = re.match(r"(\S+?)(?:=| )'?(.*?)'?: (.*)$", msg)
        if m:
            flag, value, why = m.groups()
            if "duration" in why:
                why = (
                    f'time: missing unit in duration "{value}"'
                    if re.match(r"^[\d.]+$", value)
                    else f'time: invalid duration "{value}"'
                )
            elif "not a bool" in why:
                why = f'strconv.ParseBool: parsing "{value}": invalid syntax'
            elif "not an integer" in why:
                why = f'strconv.ParseInt: parsing "{value}": invalid syntax'
            return f'invalid argument "{value}" for "{flag}" flag: {why}'
        return f"invalid argument: {msg}"
    if kind == "bad_arg_count":
        m = re.search(r"takes (.*?) positional arg\(s\) \((.*?)\), got (\d+): (.*)$", msg)
        if m:
            want, validator, got = m.group(1), m.group(2), int(m.group(3))
            if validator == "cobra.NoArgs":
                first = json.loads(m.group(4).replace("'", '"'))[0] if got else ""
                return f'unknown command "{first}" for "{cmd}"'
            if ".." in want:
                lo, hi = want.split("..")
                if lo == "0":
                    return f"accepts at most {hi} arg(s), received {got}"
                return f"accepts between {lo} and {hi} arg(s), received {got}"
            if want.startswith("at least"):
                return f"requires at least {want.split()[-1]} arg(s), only received {got}"
            return f"accepts {want} arg(s), received {got}"
        return msg
    # missing/unknown subcommand: real cobra prints help and exits 0 (a silent no-op)
    return f"{msg} (the real CLI would print help and exit 0, doing nothing)"


def help_text(cli: Any, path: str) -> str:
    e = cli.commands.get(path, {}) if path else {}
    lines = [e.get("short", f"{cli.name} CLI"), "", "Usage:", "  " + e.get("positional", cli.name)]
    subs = sorted(cli.child_names(path)) if cli.children.get(path) else []
    if subs:
        lines += ["", "Available Commands:", *(f"  {s}" for s in subs)]
    return "\n".join(lines)


# ---------------------------------------------------------------- state and log
@contextlib.contextmanager
def _locked_state() -> Any:
    path = os.environ.get("DOMUM_FAKECLI_STATE")
    if not path:
        yield {}, None
        return
    with open(path + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path, encoding="utf-8") as fh:
                state = json.load(fh)
        except FileNotFoundError:
            state = {}
        yield state, path


def _save_state(state: dict[str, Any], path: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _hold(command: str, when: str) -> None:
    """The `hold` state key: block this call at `when` until the test creates the file."""
    import time

    path = os.environ.get("DOMUM_FAKECLI_STATE")
    try:
        with open(path or "", encoding="utf-8") as fh:
            spec = (json.load(fh).get("hold") or {}).get(command)
    except (OSError, ValueError):
        return
    if not spec or spec.get("when", "before") != when:
        return
    release = Path(spec["file"])
    Path(f"{release}.held").write_text(f"{os.getpid()}\n")
    end = time.monotonic() + 120
    while not release.exists():
        if time.monotonic() > end:
            raise Fail(f"stand-in: {command} held {when} for 120 s, never released")
        time.sleep(0.02)


def _log(argv: list[str], code: int, error: str) -> None:
    path = os.environ.get("DOMUM_FAKECLI_LOG")
    if not path:
        return
    rec = {"argv": argv, "cwd": os.getcwd(), "exit": code, "ok": code == 0, "error": error}
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(rec) + "\n").encode())
    finally:
        os.close(fd)


# ---------------------------------------------------------------- main
@functools.lru_cache(maxsize=1)
def _clis() -> dict[str, Any]:
    return _checker().load_clis(TALOS_CONTRACT_VERSION, str(CONTRACTS))  # type: ignore[no-any-return]


def parse(prog: str, args: list[str], _res: dict[str, Any] | None = None) -> tuple[str | None, str]:
    """Contract check of one invocation: (None, "") if accepted, else (cobra message, help text)."""
    clis = _clis()
    res = _checker().check_argv(clis, [prog, *args]) if _res is None else _res
    if res["ok"]:
        return None, ""
    kinds = {k for k, _ in res["problems"]}
    text = cobra_message(prog, res)
    if kinds & {"missing_subcommand", "unknown_subcommand"}:
        path = (res.get("command") or prog).split(" ", 1)[1:] or [""]
        return text, help_text(clis[prog], path[0]) + "\n"
    return text, ""


def run(prog: str, args: list[str]) -> tuple[int, str, str]:
    """Validate and execute one invocation; returns (exit code, stdout, stderr)."""
    ca = _checker()
    clis = _clis()
    cli = clis[prog]
    res = ca.check_argv(clis, [prog, *args])
    error, helptext = parse(prog, args, res)
    if error is not None:
        return 1, helptext, f"Error: {error}\n"
    warn = "".join(
        f"Flag {m.split(':')[0]} has been deprecated, {m.split(':', 1)[1].strip()}\n"
        for k, m in res["problems"]
        if k == "deprecated_flag" and m.startswith("-")
    )
    path, rest = ca.resolve(cli, args, [])
    flags, pos = _collect(cli, path, rest)
    if "--help" in flags or (path == "help"):
        target = " ".join(pos) if path == "help" else path
        return 0, help_text(cli, target if target in cli.commands else "") + "\n", warn
    if path == "" and "--version" in flags:
        return 0, f"flux version {cli.data['_version'].split()[1].lstrip('v')}\n", warn
    if prog == "talosctl":
        import fake_talos as mod  # (imports PyYAML; flux calls skip it)
    else:
        import fake_flux as mod  # type: ignore[no-redef]
    _hold(f"{prog} {path}", "before")
    with _locked_state() as (state, state_path):
        call = Call(prog, path, flags, pos, state, os.getcwd())
        handler = mod.HANDLERS.get(path, mod.generic)
        code = 0
        try:
            call.injected_failure()
            handler(call)
        except Fail as exc:
            code = exc.code
            call.eprint(str(exc) if exc.raw else f"Error: {exc}")
        if call.dirty and state_path:
            _save_state(call.state, state_path)
    _hold(f"{prog} {path}", "after")
    return code, "".join(call.out), warn + "".join(call.err)


def main(argv: list[str]) -> int:
    name = os.path.basename(argv[0])
    if name in PROGS:
        prog, args = name, argv[1:]
    elif len(argv) > 1 and argv[1] in PROGS:
        prog, args = argv[1], argv[2:]
    else:
        print(f"usage: fakecli.py {{{'|'.join(PROGS)}}} ARGS...", file=sys.stderr)
        return 2
    code, out, err = 1, "", ""
    try:
        code, out, err = run(prog, args)
    except Exception as exc:  # a bug in the stand-in must show, not pass silently
        import traceback

        err = f"fakecli internal error: {exc!r}\n{traceback.format_exc()}"
        code = 70
    finally:
        sys.stdout.write(out)
        sys.stderr.write(err)
        _log([prog, *args], code, err.strip().splitlines()[0] if code and err.strip() else "")
    return code


if __name__ == "__main__":
    # Re-import as `fakecli` so the handler modules share this module's classes (Fail, Call).
    import fakecli

    sys.exit(fakecli.main(sys.argv))
