"""Flux Kustomizations and HelmReleases: ready, or failing with the controller's message.

The same read-only `flux get ... --all-namespaces` calls and table parser as `flux.status`."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from .model import Probe, Row, known

if TYPE_CHECKING:
    from ..inventory.model import Inventory

DEFAULT_TIMEOUT_S = 30.0
KINDS = ("Kustomization", "HelmRelease")


def listing_rows(argv: tuple[str, ...], kind: str, timeout_s: float) -> list[Row]:
    from ..errors import CommandFailed
    from ..flux.facts import parse_table
    from ..run import run_cmd

    proc = run_cmd(argv, timeout_s=timeout_s, check=False)
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise CommandFailed(err[-1] if err else f"flux exited {proc.returncode}")
    rows = []
    for r in parse_table(proc.stdout):
        ready = r.get("ready", "") == "True"
        suspended = r.get("suspended", "").lower() == "true"
        ref = f"{r.get('namespace', '')}/{r.get('name', '')}"
        fields = {"kind": kind, "namespace": r.get("namespace", ""), "object": r.get("name", ""),
                  "ready": r.get("ready", ""), "suspended": suspended,
                  "revision": r.get("revision", "")}  # fmt: skip
        msg = r.get("message", "")
        detail = ("suspended; " if suspended else "") + (
            msg if not ready else r.get("revision", "")
        )
        rows.append(Row("flux", f"{kind} {ref}", ready, detail or msg, fields))
    if not rows and kind == "Kustomization":  # flux-system itself is one: not bootstrapped
        return [Row("flux", f"{kind}s", False, "none found: run `inv flux.bootstrap`")]
    return rows


def probes(inv: Inventory, timeout_s: float | None) -> list[Probe]:
    from ..flux.plan import status_argvs
    from .talos import tool_row

    t = timeout_s or DEFAULT_TIMEOUT_S
    missing = tool_row("flux", "flux")
    if missing is not None:
        return [Probe("flux", "flux", t, known(missing))]
    return [
        Probe("flux", f"{kind}s", t, partial(listing_rows, argv, kind))
        for kind, argv in zip(KINDS, status_argvs(inv), strict=True)
    ]
