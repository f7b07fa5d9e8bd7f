"""A duplicate env name in a container the tree itself writes.

Kubernetes declares a container's `env` as `+listType=map +listMapKey=name`
(kubernetes/api core/v1 types.go, Container.Env), and server-side apply, which helm-controller
(Flux 2.8+) and kustomize-controller use, rejects a list-map with two entries of the same key
("duplicate entries for key [name=...]"). A client-side apply kept the last one silently.

Checked: containers, initContainers and ephemeralContainers of rendered Pods and workload
templates, and, in HelmRelease values, every list the tree writes under an env key (app-template's
`controllers.<c>.containers.<n>.env` among them). The map form of app-template's env cannot hold a
name twice: a YAML mapping with a repeated key fails the kustomize build first. What a chart adds
to the tree's values (its own env entries) is only known by rendering the chart: not checked here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .core import World
from .model import Finding, Obj

POD_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
# Keys under which charts take a list of EnvVar objects for their containers.
VALUES_ENV_KEYS = frozenset({"env", "extraEnv", "extraEnvs", "extraEnvVars", "additionalEnv"})


def duplicates(env: object) -> list[str]:
    """Names that occur more than once in a list of EnvVar-like dicts, in order of first repeat."""
    if not isinstance(env, list):
        return []
    seen: set[str] = set()
    dup: list[str] = []
    for item in env:
        if isinstance(item, dict) and "name" in item:
            name = str(item["name"])
            if name in seen and name not in dup:
                dup.append(name)
            seen.add(name)
    return dup


def _pod_spec(o: Obj) -> dict[str, Any] | None:
    node: Any = o.doc
    for key in POD_PATHS.get(o.kind, ("-",)):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _message(where: str, names: list[str]) -> str:
    return (
        f"{where} sets env {', '.join(names)} more than once: server-side apply rejects "
        "duplicate env names (keep one entry per name)"
    )


def _values_lists(node: Any, path: str) -> Iterator[tuple[str, list[Any]]]:
    if isinstance(node, dict):
        for k, v in node.items():
            here = f"{path}.{k}"
            if k in VALUES_ENV_KEYS and isinstance(v, list):
                yield here, v
            else:
                yield from _values_lists(v, here)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _values_lists(v, f"{path}[{i}]")


def check_env_duplicates(world: World) -> Iterator[Finding]:
    for o in world.objects:
        pod = _pod_spec(o)
        if pod is not None:
            prefix = ".".join(POD_PATHS[o.kind])
            for field in CONTAINER_LISTS:
                for i, c in enumerate(pod.get(field) or []):
                    names = duplicates(c.get("env")) if isinstance(c, dict) else []
                    if names:
                        label = c.get("name") or i
                        yield o.finding("env", _message(f"{prefix}.{field}[{label}].env", names))
        if o.kind == "HelmRelease":
            for where, env in _values_lists(o.spec.get("values"), "spec.values"):
                names = duplicates(env)
                if names:
                    yield o.finding("env", _message(where, names))
