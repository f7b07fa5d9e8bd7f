"""Pi fleet tasks: status, run, update, reboot, enroll. Declarations: parse, plan, and the
executor runs the plan (run/update fan out over hosts, one lane per host); reports in report.py,
pi.enroll's handlers in enroll.py.

SSH is strict everywhere (domum_tasks.ssh); only `pi.enroll` adds a host key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from invoke.context import Context

from ...taskutil import ALL, Planned, domum_task, load_inventory, plan_task

if TYPE_CHECKING:
    from .facts import PiFacts

NODE_OR_NAS = "node id (last octet of the IP, e.g. 93), or 'nas' for the NAS"
PARALLEL = "hosts at once (default: ssh.parallel from the inventory)"


def _dump(obj: Any) -> None:
    import json

    print(json.dumps(obj, indent=2, default=str))


@domum_task(help={"node": "only this Pi (node id, e.g. 92)", "json": "print the rows as JSON"})
def status(c: Context, node: str | None = None, json: bool = False) -> None:
    """Show every Pi's health: reachability, OS, load, temperature, throttling, disk.

    Exit 1 when a Pi is down (each row says why); `unknown` rows (talosctl or the talosconfig
    missing, so nobody could ask) do not count as down."""
    from ...console import print_table
    from ...errors import ConfigError
    from . import facts

    inv = load_inventory()
    if node:
        if not inv.node(node).is_pi:
            raise ConfigError(
                f"--node {node}: node {node} is not a Raspberry Pi; pi.status shows Pis"
            )
        ids = [int(node)]
    else:
        ids = list(inv.pis)
    rows = facts.probe_fleet(inv, ids)
    if json:
        _dump([r.to_dict() for r in rows])
    else:
        print_table(
            "Raspberry Pis",
            ("node", "host", "reachable", "os", "kernel", "uptime", "load", "temp", "throttling",
             "root disk", "reboot", "note"),
            [_status_row(r) for r in rows],
        )  # fmt: skip
    # The status rule (README): the rows first, then exit 1 if any host is down.
    down = [r for r in rows if r.reachable is False]
    if down:
        from ...errors import RemoteError

        raise RemoteError(
            f"{len(down)} of {len(rows)} Pi(s) down: "
            + "; ".join(f"{r.hostname}: {r.error}" for r in down)
        )


def _status_row(r: PiFacts) -> tuple[str, ...]:
    from .facts import human_uptime

    def maybe(value: Any, fmt: str = "{}") -> str:
        return "-" if value is None else fmt.format(value)

    reach = {True: "yes", False: "down", None: "unknown"}[r.reachable]  # as in --json
    reboot = {True: "yes", False: "no", None: "-"}[r.reboot_required]
    throttle = "-" if r.throttled is None else (", ".join(r.throttling) or "ok")
    return (
        str(r.node), r.hostname, reach, maybe(r.os), maybe(r.kernel),
        human_uptime(r.uptime_s) if r.uptime_s is not None else "-",
        " ".join(f"{x:.2f}" for x in r.load) if r.load else "-",
        maybe(r.temp_c, "{:.1f}°C"), throttle, maybe(r.disk_used_pct, "{}%"), reboot, r.error,
    )  # fmt: skip


@plan_task(
    help={
        "cmd": "shell command to run on each host",
        "node": NODE_OR_NAS,
        "all_": "every Raspberry Pi OS Pi (Talos has no SSH)",
        "parallel": PARALLEL,
    }
)
def run(
    c: Context, cmd: str = "", node: str | None = None, all_: bool = False,
    parallel: int | None = None,
) -> Planned:  # fmt: skip
    """Run a shell command on one Pi, the NAS or every Pi; exit 1 if any host failed."""
    from ...errors import ConfigError
    from . import plan as fleet_plan
    from . import report

    if parallel is not None and parallel < 1:
        raise ConfigError(f"--parallel {parallel}: must be 1 or more (hosts at once)")
    inv = load_inventory()
    hosts = fleet_plan.select(inv, node, all_, task="pi.run", allow_nas=True)
    plan = fleet_plan.run_plan(inv, hosts, cmd, parallel or inv.ssh.parallel)
    return Planned(plan, inv, report=lambda results, j: report.run(inv, results, j))


@plan_task(
    help={
        "node": NODE_OR_NAS,
        "all_": ALL + " (every Raspberry Pi OS Pi)",
        "parallel": "hosts upgraded at once (default 1: one at a time)",
    }
)
def update(c: Context, node: str | None = None, all_: bool = False, parallel: int = 1) -> Planned:
    """Upgrade Pis non-interactively (apt full-upgrade); report packages and reboots."""
    from ...errors import ConfigError
    from . import plan as fleet_plan
    from . import report

    if parallel < 1:
        raise ConfigError(f"--parallel {parallel}: must be 1 or more (hosts at once)")
    inv = load_inventory()
    hosts = fleet_plan.select(inv, node, all_, task="pi.update", allow_nas=False)
    plan = fleet_plan.update_plan(inv, hosts, parallel)
    return Planned(plan, inv, report=lambda results, j: report.update(inv, results, j))


@plan_task(
    help={
        "node": "the Pi to reboot (node id, e.g. 93)",
        "wait": "wait until SSH answers again with a new boot id",
        "timeout": "with --wait: give up after this many seconds (default 300)",
    }
)
def reboot(c: Context, node: str = "", wait: bool = False, timeout: int = 300) -> Planned:
    """Reboot one Raspberry Pi OS Pi; with --wait, until it answers on SSH again."""
    import time

    from ... import ssh
    from ...errors import ConfigError
    from . import facts, report
    from . import plan as fleet_plan

    if not node:
        raise ConfigError("pi.reboot: give --node N (one Pi at a time)")
    if timeout <= 0:
        raise ConfigError(f"--timeout {timeout}: must be a positive number of seconds")
    inv = load_inventory()
    (host,) = fleet_plan.select(inv, node, False, task="pi.reboot")
    node_id = int(host)
    target = ssh.resolve(inv, node_id)
    boot = facts.boot_id(inv, target) if wait else None  # a read-only probe
    plan = fleet_plan.reboot_plan(inv, node_id, boot, wait=wait, deadline_s=float(timeout))
    start = time.monotonic()
    return Planned(plan, inv, report=lambda _r, j: report.reboot(target.label, wait, start, j))


@plan_task(
    yes=True,
    help={
        "node": NODE_OR_NAS,
        "replace": "the host was reinstalled: replace the CHANGED key known_hosts has for it",
    },
)
def enroll(c: Context, node: str = "", replace: bool = False) -> Planned:
    """First contact: show a host's key fingerprint, then add it to known_hosts."""
    from ... import ssh
    from ...errors import ConfigError, RemoteError
    from . import enroll as steps
    from . import facts
    from . import plan as fleet_plan

    if not node:
        raise ConfigError("pi.enroll: give --node N (or --node nas)")
    inv = load_inventory()
    (host,) = fleet_plan.select(inv, node, False, task="pi.enroll", allow_nas=True)
    target = ssh.resolve(inv, host)
    path = facts.known_hosts_file(inv)
    handlers = steps.handlers(inv, target, path)
    try:
        key_type, key_b64 = facts.read_host_key(target, inv.ssh.connect_timeout_s)
    except RemoteError as exc:
        # Plan as for a fresh host, and say so: step 1 reads the key when it runs (and fails
        # there, exit 1, if the host is still unreachable).
        plan = fleet_plan.enroll_fresh_plan(
            str(path), target.label, target.known_hosts_name, replace=replace
        )
        plan.note(f"{exc}: planned as for a fresh host (its key is read and shown in step 1)")
    else:
        current = path.read_text() if path.exists() else ""
        _, state, replaced = fleet_plan.known_hosts_update(
            current, target.known_hosts_name, key_type, key_b64
        )
        new_fp = facts.fingerprint(key_b64)
        if state == "changed" and not replace:  # the dry run refuses as the real run does
            raise steps.changed_key(target, path, key_type, replaced, new_fp)
        plan = fleet_plan.enroll_plan(
            str(path), current, target.label, target.known_hosts_name, key_type, key_b64,
            new_fp, [facts.fingerprint(k) for k in replaced],
        )  # fmt: skip
    return Planned(
        plan,
        inv,
        handlers,
        report=lambda results, _j: steps.report(target, inv.ssh.known_hosts, results),
        show_notes=True,
    )


TASKS = [status, run, update, reboot, enroll]
