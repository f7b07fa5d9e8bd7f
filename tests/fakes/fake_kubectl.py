#!/usr/bin/env python3
"""Stand-in for `kubectl apply` and `kubectl get secret NAME -o name` (the kubectl calls Domum
makes against a cluster).

Accepts `kubectl apply` with --kubeconfig FILE (which must exist, as for kubectl), --server-side,
--field-manager NAME and --filename/-f (`-` = stdin); anything else is refused the way kubectl's
cobra/pflag would (`error: unknown flag: --x`, exit 1). The manifest is read as YAML documents;
each must have apiVersion, kind and metadata.name, a namespaced kind a namespace, and a Secret's
`data` values must be base64, as the API server demands. Applied objects are kept in the JSON
"cluster" file $DOMUM_FAKEKUBECTL_STATE; every invocation is logged as a JSON line to
$DOMUM_FAKEKUBECTL_LOG with its argv, what was applied (kind/namespace/name only: never the
data) and its exit code. Output is kubectl's: `secret/sops-age serverside-applied`.

`kubectl get secret NAME --namespace NS --kubeconfig FILE -o name` looks in that "cluster" file:
`secret/NAME`, or kubectl's NotFound on stderr with exit 1 (kubernetes v1.35
staging/src/k8s.io/kubectl/pkg/cmd/util/helpers.go standardErrorMessage: "Error from server
(%s): %s" with the status reason; apimachinery pkg/api/errors/errors.go NewNotFound: `%s %q not
found` with the resource's plural: `secrets "sops-age" not found`).

`kubectl kustomize` is an offline render, not a cluster call: with $DOMUM_FAKEKUBECTL_REAL set
(a real kubectl), the stand-in hands it over to that program, so `domum check` renders the tree
as it would with the real tool first on PATH.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
from typing import Any

import yaml

VALUE_FLAGS = {"--kubeconfig", "--field-manager", "--filename", "-f"}
BOOL_FLAGS = {"--server-side"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


class Fail(Exception):
    pass


def _parse(args: list[str]) -> tuple[str, dict[str, str]]:
    if not args or args[0] != "apply":
        raise Fail(f'unknown command "{args[0] if args else ""}" for "kubectl"')
    flags: dict[str, str] = {}
    i = 1
    while i < len(args):
        word = args[i]
        name, eq, value = word.partition("=")
        if name in VALUE_FLAGS:
            if not eq:
                if i + 1 >= len(args):
                    raise Fail(f"flag needs an argument: {name}")
                value, i = args[i + 1], i + 1
            flags["--filename" if name == "-f" else name] = value
        elif name in BOOL_FLAGS:
            flags[name] = value or "true"
        elif word.startswith("-"):
            raise Fail(f"unknown flag: {name}")
        else:
            raise Fail(f'unknown command "{word}" for "kubectl apply"')
        i += 1
    return "apply", flags


def _objects(text: str) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise Fail(f"error parsing STDIN: {str(exc).splitlines()[0]}") from None
    if not docs:
        raise Fail("no objects passed to apply")
    for d in docs:
        meta = d.get("metadata") if isinstance(d, dict) else None
        if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind"):
            raise Fail("error validating data: apiVersion or kind not set")
        if not isinstance(meta, dict) or not meta.get("name"):
            raise Fail(f"error: resource name may not be empty ({d['kind']})")
        if d["kind"] not in CLUSTER_SCOPED and not meta.get("namespace"):
            meta["namespace"] = "default"
        for key, value in (d.get("data") or {}).items() if d["kind"] == "Secret" else ():
            try:
                base64.b64decode(str(value), validate=True)
            except binascii.Error:
                raise Fail(
                    f'Secret in version "v1" cannot be handled: data[{key}]: illegal base64'
                ) from None
    return docs


def _key(d: dict[str, Any]) -> str:
    meta = d["metadata"]
    return "/".join(x for x in (d["kind"], meta.get("namespace", ""), meta["name"]) if x)


def _load_cluster() -> dict[str, Any]:
    state_path = os.environ.get("DOMUM_FAKEKUBECTL_STATE")
    if state_path and os.path.exists(state_path):
        with open(state_path, encoding="utf-8") as fh:
            return dict(json.load(fh))
    return {}


def get_secret(args: list[str]) -> tuple[int, str, str, list[str]]:
    pos: list[str] = []
    flags: dict[str, str] = {}
    i = 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        if name in ("--namespace", "-n", "--kubeconfig", "--output", "-o"):
            if not eq:
                if i + 1 >= len(args):
                    return 1, "", f"error: flag needs an argument: {name}\n", []
                value, i = args[i + 1], i + 1
            flags[{"-n": "--namespace", "-o": "--output"}.get(name, name)] = value
        elif name.startswith("-"):
            return 1, "", f"error: unknown flag: {name}\n", []
        else:
            pos.append(args[i])
        i += 1
    if pos[:1] not in (["secret"], ["secrets"]) or len(pos) != 2 or flags.get("--output") != "name":
        return 1, "", "error: the stand-in answers only `get secret NAME -o name`\n", []
    kubeconfig = flags.get("--kubeconfig")
    if kubeconfig is not None and not os.path.isfile(kubeconfig):
        return 1, "", f"error: stat {kubeconfig}: no such file or directory\n", []
    key = f"Secret/{flags.get('--namespace', 'default')}/{pos[1]}"
    if key not in _load_cluster():
        return 1, "", f'Error from server (NotFound): secrets "{pos[1]}" not found\n', []
    return 0, f"secret/{pos[1]}\n", "", []


def run(args: list[str], stdin: str) -> tuple[int, str, str, list[str]]:
    if args[:1] == ["get"]:
        return get_secret(args[1:])
    try:
        _, flags = _parse(args)
        kubeconfig = flags.get("--kubeconfig")
        if kubeconfig is not None and not os.path.isfile(kubeconfig):
            raise Fail(f"stat {kubeconfig}: no such file or directory")
        if flags.get("--filename") != "-":
            raise Fail("must specify one of -f and -k")  # the stand-in reads stdin only
        docs = _objects(stdin)
    except Fail as exc:
        return 1, "", f"error: {exc}\n", []
    state_path = os.environ.get("DOMUM_FAKEKUBECTL_STATE")
    cluster: dict[str, Any] = {}
    if state_path and os.path.exists(state_path):
        with open(state_path, encoding="utf-8") as fh:
            cluster = json.load(fh)
    verb = "serverside-applied" if flags.get("--server-side") == "true" else "configured"
    out = []
    for d in docs:
        cluster[_key(d)] = d
        out.append(f"{d['kind'].lower()}/{d['metadata']['name']} {verb}\n")
    if state_path:
        with open(state_path, "w", encoding="utf-8") as fh:
            json.dump(cluster, fh, indent=1, sort_keys=True)
    return 0, "".join(out), "", [_key(d) for d in docs]


def main() -> int:
    args = sys.argv[1:]
    real = os.environ.get("DOMUM_FAKEKUBECTL_REAL")
    if args[:1] == ["kustomize"] and real:
        os.execv(real, [real, *args])
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    code, out, err, applied = run(args, stdin)
    sys.stdout.write(out)
    sys.stderr.write(err)
    log = os.environ.get("DOMUM_FAKEKUBECTL_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            rec = {"argv": ["kubectl", *args], "applied": applied, "exit": code, "err": err}
            fh.write(json.dumps(rec) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
