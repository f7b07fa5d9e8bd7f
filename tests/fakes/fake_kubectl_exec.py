#!/usr/bin/env python3
"""Stand-in for the two kubectl calls of a `postgres` backup job: only the transport is fake.

- `kubectl --kubeconfig F -n NS get pods -l K=V[,K=V] -o json`: the pods of $FAKE_KUBE_PODS (a
  JSON list of Pod objects: the "API server") in NS whose labels match every K=V, as a List.
- `kubectl --kubeconfig F -n NS exec POD -c CONTAINER -- CMD ARGS...`: checked as kubectl and
  the API server would (the kubeconfig file exists; the pod exists in NS and is Running; the
  container is one of its spec.containers; `--` separates the command, which kubectl requires
  since 1.x), then CMD is exec'd HERE, so the real program (pg_dumpall) runs with its real exit
  code and output; its environment (PGHOST, PGPORT, PGUSER) plays the container's.
Anything else: `error: unknown command`, exit 1. Each call is logged as a JSON line to
$FAKE_KUBE_LOG.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def fail(msg: str) -> int:
    print(msg, file=sys.stderr)
    return 1


def parse_globals(args: list[str]) -> tuple[dict[str, str], list[str]]:
    flags: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest += args[i:]
            break
        if a in ("--kubeconfig", "-n", "--namespace", "-l", "--selector", "-o", "-c"):
            if i + 1 >= len(args):
                raise SystemExit(fail(f"error: flag needs an argument: {a}"))
            key = {"--namespace": "-n", "--selector": "-l"}.get(a, a)
            flags[key] = args[i + 1]
            i += 2
            continue
        if a.startswith("-"):
            raise SystemExit(fail(f"error: unknown flag: {a}"))
        rest.append(a)
        i += 1
    return flags, rest


def pods() -> list[dict[str, Any]]:
    with open(os.environ["FAKE_KUBE_PODS"], encoding="utf-8") as fh:
        return list(json.load(fh))


def main() -> int:
    args = sys.argv[1:]
    with open(os.environ["FAKE_KUBE_LOG"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps(args) + "\n")
    flags, rest = parse_globals(args)
    kubeconfig = flags.get("--kubeconfig", "")
    if not kubeconfig or not os.path.isfile(kubeconfig):
        return fail(f"error: stat {kubeconfig}: no such file or directory")
    ns = flags.get("-n", "default")
    in_ns = [p for p in pods() if p["metadata"].get("namespace") == ns]
    if rest[:2] == ["get", "pods"] and len(rest) == 2 and flags.get("-o") == "json":
        want = dict(kv.split("=", 1) for kv in flags.get("-l", "").split(",") if kv)
        items = [p for p in in_ns if want.items() <= p["metadata"].get("labels", {}).items()]
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        return 0
    if rest[:1] == ["exec"]:
        if "--" not in rest:
            return fail(
                "error: exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND]"
            )
        cut = rest.index("--")
        names, command = rest[1:cut], rest[cut + 1 :]
        if len(names) != 1 or not command:
            return fail("error: expected 'exec POD -- COMMAND [args...]'")
        pod = next((p for p in in_ns if p["metadata"]["name"] == names[0]), None)
        if pod is None:
            return fail(f'Error from server (NotFound): pods "{names[0]}" not found')
        if pod.get("status", {}).get("phase") != "Running":
            return fail("error: cannot exec into a container in a completed pod")
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = flags.get("-c", containers[0])
        if container not in containers:
            return fail(f'error: unable to upgrade connection: container not found ("{container}")')
        os.execvp(command[0], command)
    return fail(f'error: unknown command {" ".join(rest[:2])!r} for "kubectl"')


if __name__ == "__main__":
    sys.exit(main())
