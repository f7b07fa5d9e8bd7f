"""What pi.run, pi.update and pi.reboot print after their plan ran: per-host outputs, tables,
JSON, and exit 1 (RemoteError) when a host failed. Reads step results only; runs nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ... import ssh
from ...ssh import HostResult

if TYPE_CHECKING:
    from ...inventory.model import Inventory
    from ...run import StepResult


def _dump(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def host_result(inv: Inventory, result: StepResult) -> HostResult:
    """The HostResult of a check=False Ssh step (ssh.run_step puts it in the value); a step
    that failed before reaching the host becomes an `unreachable` one carrying the reason."""
    if isinstance(result.value, HostResult):
        return result.value
    target = ssh.resolve(inv, getattr(result.step, "host", ""))
    return HostResult(target, "unreachable", error=result.stderr.strip() or "failed")


def lanes(inv: Inventory, results: Sequence[StepResult]) -> list[list[HostResult]]:
    """Per host, the results of its lane (the plan's one Fanout step)."""
    return [[host_result(inv, r) for r in lane] for lane in results[0].value]


def run(inv: Inventory, results: Sequence[StepResult], json_out: bool) -> None:
    hosts = [lane[0] for lane in lanes(inv, results)]
    if json_out:
        _dump([_result_dict(r) for r in hosts])
    else:
        _print_outputs(hosts)
    ssh.raise_for(hosts, "pi.run")


def _result_dict(r: HostResult) -> dict[str, Any]:
    return {
        "host": r.target.label, "address": r.target.host, "status": r.status,
        "exit_code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr, "error": r.error,
        "elapsed_s": round(r.elapsed_s, 3),
    }  # fmt: skip


def _print_outputs(results: list[HostResult]) -> None:
    from ...console import print_table

    for r in results:
        print(f"── {r.target.label} ({r.target.host}): {r.status}")
        for text in (r.stdout, r.stderr):
            if text.strip():
                print(text.rstrip("\n"))
    rows = [(r.target.label, r.status, "-" if r.exit_code is None else r.exit_code,
             f"{r.elapsed_s:.2f}s", r.reason()) for r in results]  # fmt: skip
    print_table("pi.run", ("host", "status", "exit", "time", "reason"), rows)


def update(inv: Inventory, results: Sequence[StepResult], json_out: bool) -> None:
    from ...console import print_table
    from . import facts

    per_host = lanes(inv, results)
    report = []
    for done in per_host:
        last = done[-1]
        row: dict[str, Any] = {"host": last.target.label, "ok": last.ok and len(done) == 3,
                               "upgraded": None, "packages": [], "reboot_required": None,
                               "reason": last.reason()}  # fmt: skip
        if len(done) >= 2 and done[1].ok:
            row["upgraded"], row["packages"] = facts.parse_upgrade(done[1].stdout)
        if len(done) == 3 and done[2].ok:
            row["reboot_required"], _ = facts.parse_reboot_check(done[2].stdout)
        report.append(row)
    if json_out:
        _dump(report)
    else:
        print_table(
            "pi.update",
            ("host", "result", "upgraded", "packages", "reboot required", "reason"),
            [(r["host"], "ok" if r["ok"] else "error", r["upgraded"], " ".join(r["packages"]),
              {True: "yes", False: "no", None: "-"}[r["reboot_required"]], r["reason"])
             for r in report],
        )  # fmt: skip
    ssh.raise_for([done[-1] for done in per_host], "pi.update")


def reboot(label: str, waited: bool, start: float, json_out: bool) -> None:
    took = time.monotonic() - start
    if json_out:
        _dump({"host": label, "rebooted": True, "waited": waited, "seconds": round(took, 1)})
    elif waited:
        print(f"{label} is back after {took:.0f}s")
