"""flux behaviours of the stand-in (see fakecli.py for the environment and state keys).

Kustomizations live in state["kustomizations"] (default: flux-system, infrastructure, apps in the
flux-system namespace). suspend/resume flip `suspended` (`--all` in --namespace, or by name in
--namespace; an unknown name fails like flux); `get kustomizations [-A]` prints flux v2's table
(NAMESPACE with -A, NAME REVISION SUSPENDED READY MESSAGE, tab-terminated padded cells, hex
truncated); reconcile and check print flux's progress lines (on stderr, like flux's logger).
"""

from __future__ import annotations

import re
from typing import Any

import flux_lifecycle as life
from fake_flux_bootstrap import HANDLERS as BOOTSTRAP_HANDLERS
from fakecli import Call, Fail

REVISION = "main@sha1:3f2e9c1d5a7b8e0f4c6d2a1b9e8f7d6c5b4a3e2d"
DEFAULT_KS = ("flux-system", "infrastructure", "apps")


def _kustomizations(call: Call) -> list[dict[str, Any]]:
    ks = call.state.get("kustomizations")
    if ks is None:
        ks = [
            {
                "name": n,
                "namespace": "flux-system",
                "ready": True,
                "suspended": False,
                "revision": REVISION,
            }
            for n in DEFAULT_KS
        ]
        call.state["kustomizations"] = ks
    return ks  # type: ignore[no-any-return]


def _scope(call: Call, name: str | None) -> list[dict[str, Any]]:
    ns = call.flag("--namespace") or "flux-system"
    every_ns = call.bool("--all-namespaces")
    items = [
        k for k in _kustomizations(call) if every_ns or k.get("namespace", "flux-system") == ns
    ]
    if name is not None:
        items = [k for k in items if k["name"] == name]
        if not items:
            raise Fail(f'kustomizations.kustomize.toolkit.fluxcd.io "{name}" not found', raw=False)
    return items


def _set_suspended(call: Call, value: bool) -> None:
    verb = "suspend" if value else "resum"
    if call.bool("--all"):
        items = _scope(call, None)
        if not items:
            ns = call.flag("--namespace") or "flux-system"
            call.eprint(f"✗ no Kustomization objects found in {ns} namespace")
            return
    elif call.pos:
        items = [k for name in call.pos for k in _scope(call, name)]
    else:
        raise Fail("Kustomization name is required")
    for k in items:
        call.eprint(
            f"► {verb}ing kustomization {k['name']} in {k.get('namespace', 'flux-system')} namespace"
        )
        k["suspended"] = value
        call.eprint(f"✔ kustomization {verb}ed" if value else "✔ kustomization resumed")
        if not value and call.bool("--wait", True):
            call.eprint("◎ waiting for Kustomization reconciliation")
            call.eprint(
                f"✔ Kustomization reconciliation completed\n✔ applied revision {k.get('revision', REVISION)}"
            )
    call.dirty = True


def suspend(call: Call) -> None:
    _set_suspended(call, True)


def resume(call: Call) -> None:
    _set_suspended(call, False)


def get_kustomizations(call: Call) -> None:
    life.require_crds(call, "kustomizations")
    life.settle(call, "kustomizations")
    items = _scope(call, call.pos[0] if call.pos else None)
    every_ns = call.bool("--all-namespaces")
    status = call.flag("--status-selector")
    if status:
        want = status.split("=", 1)[1].lower() == "true"
        items = [k for k in items if bool(k.get("ready", True)) == want]
    if not items:
        ns = call.flag("--namespace") or "flux-system"
        call.eprint(f"✗ no Kustomization objects found in {'any' if every_ns else ns} namespace")
        return
    rows = [["NAMESPACE"] if every_ns else []]
    rows[0] += ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
    for k in items:
        ready = bool(k.get("ready", True))
        revision = _truncate_hex(k.get("revision", REVISION))
        msg = k.get("message") or (
            f"Applied revision: {revision}" if ready else "kustomization build failed"
        )
        row = [k.get("namespace", "flux-system")] if every_ns else []
        row += [k["name"], revision, str(bool(k.get("suspended"))), str(ready), _truncate_hex(msg)]
        rows.append(row)
    if call.bool("--no-header"):
        rows = rows[1:]
    # flux's printers.TablePrinter (tablewriter, NoWhiteSpace, TablePadding "\t"): every cell,
    # the last one too, is space-padded to its column width and followed by a tab.
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        call.print("".join(c.ljust(w) + "\t" for c, w in zip(r, widths, strict=True)))


def _truncate_hex(text: str) -> str:
    """flux's utils.TruncateHex: `sha1:<40 hex>` / `sha256:<64 hex>` shown with 8 hex digits."""
    return re.sub(r"(sha1|sha256):([0-9a-f]{8})[0-9a-f]+", r"\1:\2", text)


def reconcile_kustomization(call: Call) -> None:
    name = call.pos[0] if call.pos else None
    if not name:
        raise Fail("Kustomization name is required")
    (k,) = _scope(call, name)
    ns = k.get("namespace", "flux-system")
    if k.get("suspended"):
        raise Fail("resource is suspended")
    if call.bool("--with-source"):
        call.eprint(f"► annotating GitRepository flux-system in {ns} namespace")
        call.eprint("✔ GitRepository annotated\n◎ waiting for GitRepository reconciliation")
        call.eprint(f"✔ fetched revision {k.get('revision', REVISION)}")
    call.eprint(f"► annotating Kustomization {name} in {ns} namespace")
    call.eprint("✔ Kustomization annotated\n◎ waiting for Kustomization reconciliation")
    if not k.get("ready", True):
        raise Fail(k.get("message") or "kustomization build failed")
    call.eprint(f"✔ applied revision {k.get('revision', REVISION)}")


def check(call: Call) -> None:
    call.eprint("► checking prerequisites")
    call.eprint("✔ Kubernetes 1.35.4 >=1.33.0-0")
    if call.bool("--pre"):
        call.eprint("✔ prerequisites checks passed")
        return
    call.eprint("► checking version in cluster\n✔ distribution: flux-v2.9.4\n✔ bootstrapped: true")
    call.eprint("► checking controllers")
    for c in (
        "helm-controller",
        "kustomize-controller",
        "notification-controller",
        "source-controller",
    ):
        call.eprint(f"✔ {c}: deployment ready\n► ghcr.io/fluxcd/{c}:v1.6.0")
    call.eprint("► checking crds\n✔ kustomizations.kustomize.toolkit.fluxcd.io/v1")
    call.eprint("✔ all checks passed")


def version(call: Call) -> None:
    call.print("flux: v2.9.4")
    if not call.bool("--client"):
        call.print(
            "distribution: flux-v2.9.4\nhelm-controller: v1.4.0\nkustomize-controller: v1.7.0\nsource-controller: v1.7.0"
        )


DEFAULT_HR = ("cert-manager", "metallb", "longhorn")


def _helmreleases(call: Call) -> list[dict[str, Any]]:
    hrs = call.state.get("helmreleases")
    if hrs is None:
        hrs = [
            {"name": n, "namespace": n if n != "longhorn" else "longhorn-system", "ready": True}
            for n in DEFAULT_HR
        ]
        call.state["helmreleases"] = hrs
    return hrs  # type: ignore[no-any-return]


def tree_defaults() -> dict[str, list[dict[str, Any]]]:
    """What a bootstrap installs when the test did not set the tree's objects."""
    return {
        "kustomizations": [
            {"name": n, "namespace": "flux-system", "suspended": False} for n in DEFAULT_KS
        ],
        "helmreleases": [
            {"name": n, "namespace": n if n != "longhorn" else "longhorn-system"}
            for n in DEFAULT_HR
        ],
    }


def get_helmreleases(call: Call) -> None:
    """flux v2's HelmRelease table (same printer as kustomizations; revision = chart version)."""
    life.require_crds(call, "helmreleases")
    life.settle(call, "helmreleases")
    every_ns = call.bool("--all-namespaces")
    ns = call.flag("--namespace") or "flux-system"
    items = [h for h in _helmreleases(call) if every_ns or h.get("namespace") == ns]
    if not items:
        call.eprint(f"✗ no HelmRelease objects found in {'any' if every_ns else ns} namespace")
        return
    rows = [
        (["NAMESPACE"] if every_ns else []) + ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
    ]
    for h in items:
        ready = bool(h.get("ready", True))
        msg = h.get("message") or (
            "Helm install succeeded for release " + f"{h['namespace']}/{h['name']}.v1"
            if ready
            else "install retries exhausted"
        )
        row = [h["namespace"]] if every_ns else []
        row += [
            h["name"],
            h.get("revision", "1.0.0"),
            str(bool(h.get("suspended"))),
            str(ready),
            msg,
        ]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        call.print("".join(c.ljust(w) + "\t" for c, w in zip(r, widths, strict=True)))


def diff_kustomization(call: Call) -> None:
    """`flux diff kustomization NAME --path DIR`: the Kustomization must exist in the cluster and
    the path locally; state["drift"][name] lists drifted objects (printed as `►` lines, exit 1
    like flux's ErrDiffFound)."""
    import os

    name = call.pos[0] if call.pos else None
    if not name:
        raise Fail("kustomization name is required")
    path = call.flag("--path")
    if not path:
        raise Fail('invalid resource path ""')
    if not os.path.isdir(call.path_of(path)):
        raise Fail(f'invalid resource path "{path}"')
    _scope(call, name)
    drift = (call.state.get("drift") or {}).get(name) or []
    call.eprint(f"► building objects from {path}")
    for obj in drift:
        call.print(f"► {obj} drifted")
    if drift:
        raise Fail("", code=1, raw=True)


def generic(call: Call) -> None:
    """Any other command the contract accepts: succeeds quietly."""


HANDLERS = {
    "suspend kustomization": suspend,
    "resume kustomization": resume,
    "get kustomizations": get_kustomizations,
    "get helmreleases": get_helmreleases,
    "diff kustomization": diff_kustomization,
    "reconcile kustomization": reconcile_kustomization,
    "check": check,
    "version": version,
}
HANDLERS.update(BOOTSTRAP_HANDLERS)
