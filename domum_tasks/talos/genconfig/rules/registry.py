"""Every rule is registered with the Talos function it follows (siderolabs/talos at UPSTREAM_TAG),
so a test can hold each one to a citation and refuse rules from other versions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Doc = dict[str, Any]
Stage = Literal["decode", "container", "v1alpha1", "document", "conflict"]

UPSTREAM_REPO = "siderolabs/talos"
UPSTREAM_TAG = "v1.13.9"


@dataclass(frozen=True)
class Rule:
    """One check as Talos runs it.

    stage: decode (yaml into the Go types, configloader), container (config/container New: one
    document per kind and name), v1alpha1 (v1alpha1.Config.Validate and what it calls), document
    (a typed document's Validate), conflict (its V1Alpha1ConflictValidate).
    file: the Go file under pkg/machinery/ at UPSTREAM_TAG; function: the Go function.
    secrets: the rule reads only the secrets bundle (CAs, keys), which Domum's offline model of
    the merged config leaves out (merged.py); validate(secrets=False) skips it.
    """

    check: Callable[..., list[str]]
    file: str
    function: str
    stage: Stage
    kind: str = ""
    secrets: bool = False


RULES: list[Rule] = []


def rule(
    file: str, function: str, stage: Stage, kind: str = "", secrets: bool = False
) -> Callable[[Callable[..., list[str]]], Callable[..., list[str]]]:
    def register(check: Callable[..., list[str]]) -> Callable[..., list[str]]:
        RULES.append(Rule(check, file, function, stage, kind, secrets))
        return check

    return register
