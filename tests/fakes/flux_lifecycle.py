"""Opt-in Flux lifecycle of the stand-in: no CRDs before `flux bootstrap`, then the tree's
Kustomizations and HelmReleases appear and become Ready after a number of polls.

State keys (see fakecli.py; without `flux_installed` flux behaves as before this module):
    flux_installed: bool       false = Flux not installed: `flux get kustomizations|helmreleases`
                               fail as flux does without the CRDs; `flux bootstrap` sets it true
    kustomizations / helmreleases   the tree's objects (name, namespace; test-set, else the
                               defaults of fake_flux.py): hidden until bootstrap, which marks
                               them not yet reconciled
    ready_after_polls: N       the first N `flux get <kind>` calls after bootstrap show every
                               object of that kind not Ready; later calls show them Ready
    flux_polls: {kind: N}      (kept by the stand-in) `get` calls per kind since bootstrap
    failing: {name: "message"} that object stays READY False with that MESSAGE once reconciled

Messages, from upstream (read, not copied):
- fluxcd/flux2 v2.9.4 cmd/flux/get.go getCommand.run: kubeClient.List's error is returned as is
  (only `get all` ignores apimeta.IsNoMatchError); cmd/flux/main.go prints it with
  logger.Failuref ("✗ ...") and exits 1. Without the CRD the RESTMapper's error is
  k8s.io/apimachinery pkg/api/meta/errors.go NoKindMatchError.Error():
  `no matches for kind "Kustomization" in version "kustomize.toolkit.fluxcd.io/v1"`.
- cmd/flux/get.go statusAndMessage: the Ready condition's status and message, or, before the
  controller has set one, "False" and "waiting to be reconciled"; get_kustomization.go
  summariseItem shows LastAppliedRevision (empty before the first apply).
"""

from __future__ import annotations

from typing import Any

from fakecli import Call, Fail

GVK = {
    "kustomizations": ("Kustomization", "kustomize.toolkit.fluxcd.io/v1"),
    "helmreleases": ("HelmRelease", "helm.toolkit.fluxcd.io/v2"),
}
WAITING = "waiting to be reconciled"


def active(call: Call) -> bool:
    return "flux_installed" in call.state


def require_crds(call: Call, kind: str) -> None:
    if active(call) and not call.state.get("flux_installed"):
        name, version = GVK[kind]
        raise Fail(f'✗ no matches for kind "{name}" in version "{version}"', raw=True)


def on_bootstrap(call: Call, defaults: dict[str, list[dict[str, Any]]]) -> None:
    """Flux installed: the tree's objects exist, none reconciled yet."""
    if not active(call):
        return
    call.set("flux_installed", True)
    call.set("flux_polls", {})
    for kind, items in defaults.items():
        objs = call.state.get(kind)
        objs = [dict(o) for o in (objs if objs is not None else items)]
        for o in objs:
            o.update(ready=False, message=WAITING, revision="", pending=True)
        call.set(kind, objs)


def settle(call: Call, kind: str) -> None:
    """One `flux get <kind>` poll: count it, and once past `ready_after_polls` mark that kind's
    objects Ready, except the `failing` ones, which show their message."""
    if not active(call):
        return
    polls = dict(call.state.get("flux_polls") or {})
    polls[kind] = int(polls.get(kind, 0)) + 1
    call.set("flux_polls", polls)
    if polls[kind] <= int(call.state.get("ready_after_polls") or 0):
        return
    failing = call.state.get("failing") or {}
    from fake_flux import REVISION

    for o in call.state.get(kind) or []:
        if not o.pop("pending", False) and o["name"] not in failing:
            continue
        o["revision"] = o.get("revision") or (REVISION if kind == "kustomizations" else "1.0.0")
        if o["name"] in failing:
            o.update(ready=False, message=str(failing[o["name"]]))
        else:
            o["ready"] = True
            o.pop("message", None)
    call.dirty = True
