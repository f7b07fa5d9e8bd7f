"""talosctl behaviours of the stand-in (see fakecli.py for the environment and state keys).

Each handler gets a `fakecli.Call` whose argv already passed the v1.13 contract; it writes the files
the real command writes, prints what the real one prints (abridged), and updates the state file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

import artifacts as art
import talos_lifecycle as life
import talos_patch
import talos_resources
import yaml
from fakecli import Call, Fail
from talos_rules import validate_docs, without_deprecated

CLIENT_VERSION = art.TALOS_VERSION
NODES_NOT_SET = (
    "nodes are not set for the command: please use `--nodes` flag or configuration file "
    "to set the nodes to run the command against"
)


# ---------------------------------------------------------------- client side
def _talosconfig_path(call: Call) -> str:
    return call.path_of(
        call.flag("--talosconfig")
        or os.environ.get("TALOSCONFIG")
        or os.path.join(call.home(), ".talos", "config")
    )


def _load_talosconfig(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            cfg = art.load_yaml(fh) or {}
    except FileNotFoundError:
        raise Fail(
            f'failed to open config file "{path}": open {path}: no such file or directory'
        ) from None
    except yaml.YAMLError as exc:
        raise Fail(f'failed to parse config file "{path}": {exc}') from None
    if not isinstance(cfg, dict):
        raise Fail(f'failed to parse config file "{path}": not a mapping')
    return cfg


def client(call: Call, single: str | None = None) -> tuple[list[str], list[str], dict[str, Any]]:
    """Resolve (nodes, endpoints, context) as talosctl does; `single` = command name that refuses
    more than one node (helpers.FailIfMultiNodes)."""
    nodes = call.multi("--nodes")
    if call.bool("--insecure"):
        if not nodes:
            raise Fail(NODES_NOT_SET)
        life.gate(call, nodes, nodes)
        return nodes, call.multi("--endpoints") or nodes, {}
    cfg = _load_talosconfig(_talosconfig_path(call))
    name = call.flag("--context") or cfg.get("context")
    ctx = (cfg.get("contexts") or {}).get(name) if name else None
    if not isinstance(ctx, dict):
        raise Fail(f'failed to resolve config context: context "{name or ""}" is not defined')
    endpoints = call.multi("--endpoints") or list(ctx.get("endpoints") or [])
    if not endpoints:
        raise Fail("failed to determine endpoints")
    nodes = nodes or list(ctx.get("nodes") or [])
    if not nodes:
        raise Fail(NODES_NOT_SET)
    if single and len(nodes) > 1:
        raise Fail(f'command "{single}" is not supported with multiple nodes')
    life.gate(call, nodes, endpoints)
    return nodes, endpoints, ctx


def _exists_guard(call: Call, path: str) -> None:
    if os.path.exists(path) and not call.bool("--force"):
        raise Fail(f'file "{path}" already exists, use --force to overwrite')


def _write(path: str, text: str, mode: int = 0o600) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, mode)


# ---------------------------------------------------------------- offline: gen, validate, mc
def gen_secrets(call: Call) -> None:
    if call.flag("--from-controlplane-config") or call.flag("--from-kubernetes-pki"):
        src = call.flag("--from-controlplane-config") or call.flag("--from-kubernetes-pki") or ""
        if not os.path.exists(call.path_of(src)):
            raise Fail(f"open {src}: no such file or directory")
    out = call.flag("--output-file", "secrets.yaml") or "secrets.yaml"
    text = art.dump_yaml(art.new_secrets_bundle())
    if out == "-":
        call.print(text.rstrip("\n"))
        return
    path = call.path_of(out)
    _exists_guard(call, path)
    _write(path, text)


def gen_config(call: Call) -> None:
    name, endpoint = call.pos
    if not re.match(r"^https?://", endpoint):
        # talosctl accepts host[:port] and warns; keep the URL form the docs show
        call.eprint(f'WARNING: endpoint "{endpoint}" has no scheme, using https://{endpoint}')
        endpoint = f"https://{endpoint}"
    types = call.multi("--output-types") or list(art.OUTPUT_TYPES)
    bad = [t for t in types if t not in art.OUTPUT_TYPES]
    if bad:
        raise Fail(f'invalid output type: "{bad[0]}"')
    secrets_file = call.flag("--with-secrets")
    if secrets_file:
        try:
            bundle = art.load_secrets_bundle(call.path_of(secrets_file))
        except FileNotFoundError:
            raise Fail(
                f"failed to load secrets bundle: open {secrets_file}: no such file or directory"
            ) from None
        except (ValueError, yaml.YAMLError) as exc:
            raise Fail(str(exc).splitlines()[0]) from None
    else:
        bundle = art.new_secrets_bundle()
    mirrors = dict(m.split("=", 1) for m in call.multi("--registry-mirror") if "=" in m)
    common = dict(
        kubernetes_version=call.flag("--kubernetes-version") or art.KUBERNETES_VERSION,
        install_image=call.flag("--install-image") or art.DEFAULT_INSTALL_IMAGE,
        install_disk=call.flag("--install-disk") or "/dev/sda",
        dns_domain=call.flag("--dns-domain") or "cluster.local",
        additional_sans=call.multi("--additional-sans"),
        discovery=call.bool("--with-cluster-discovery", True),
    )
    rendered: dict[str, str] = {}
    for kind in ("controlplane", "worker"):
        if kind not in types:
            continue
        patches = call.flags.get("--config-patch", []) + call.flags.get(
            "--config-patch-control-plane" if kind == "controlplane" else "--config-patch-worker",
            [],
        )
        docs = [art.machine_config(kind, name, endpoint, bundle, **common)]  # type: ignore[arg-type]
        docs.append(art.hostname_doc())  # gen config >= 1.12: HostnameConfig auto: stable
        docs += art.registry_mirror_docs(mirrors)
        try:
            docs = talos_patch.apply_specs(docs, patches, cwd=call.cwd)
        except ValueError as exc:
            raise Fail(str(exc)) from None
        rendered[kind] = art.dump_docs(docs)
    if "talosconfig" in types:
        rendered["talosconfig"] = art.dump_yaml(art.talosconfig(name, endpoint, bundle))
    out = call.flag("--output") or call.flag("--output-dir") or "."
    if len(types) == 1 and out != "." and not os.path.isdir(call.path_of(out)):
        if out == "-":
            call.print(rendered[types[0]].rstrip("\n"))
            return
        targets = {types[0]: call.path_of(out)}
    else:
        if call.flag("--output") and len(types) > 1 and os.path.isfile(call.path_of(out)):
            raise Fail(
                f'output path "{out}" must be a directory when multiple output types are set'
            )
        names = {
            "controlplane": "controlplane.yaml",
            "worker": "worker.yaml",
            "talosconfig": "talosconfig",
        }
        targets = {t: os.path.join(call.path_of(out), names[t]) for t in types}
    for path in targets.values():
        _exists_guard(call, path)
    for kind, path in targets.items():
        _write(path, rendered[kind])
        call.eprint(f"generating {'PKI and tokens' if not secrets_file else kind}")
        call.eprint(f"Created {os.path.relpath(path, call.cwd)}")


_SCHEMA_VALIDATOR: Any = None


def _schema_errors(doc: dict[str, Any]) -> list[str]:
    """Strict decode like Talos: every document must match the v1.13 config schema."""
    global _SCHEMA_VALIDATOR
    try:
        import jsonschema
    except ImportError:
        return []
    if _SCHEMA_VALIDATOR is None:
        from fakecli import CONTRACTS, SHARED_CONTRACTS

        name = "talos-config.v1.13.schema.json"
        found = [d / name for d in (CONTRACTS, SHARED_CONTRACTS) if (d / name).is_file()]
        if not found:  # a clone without ../shared: no schema to hold configs against
            return []
        with open(found[0], encoding="utf-8") as fh:
            schema = json.load(fh)
        _SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(schema)
    best = jsonschema.exceptions.best_match(_SCHEMA_VALIDATOR.iter_errors(doc))
    if best is None:
        return []
    where = ".".join(str(p) for p in best.absolute_path) or "<document>"
    return [f"{where}: {best.message}"]


def validate(call: Call) -> None:
    cfg = call.flag("--config") or ""
    mode = call.flag("--mode") or ""
    if mode not in ("metal", "cloud", "container"):
        raise Fail(f'unknown mode "{mode}"')
    path = call.path_of(cfg)
    try:
        with open(path, encoding="utf-8") as fh:
            docs = art.load_yaml_all(fh)
    except FileNotFoundError:
        raise Fail(f"open {cfg}: no such file or directory") from None
    except yaml.YAMLError as exc:
        raise Fail(f"failed to decode config: {str(exc).splitlines()[0]}") from None
    problems: list[str] = []
    for d in docs:
        if isinstance(d, dict):
            problems.extend(_schema_errors(without_deprecated(d)))
    problems.extend(validate_docs(docs, mode))  # what talosctl v1.13.9 checks (talos_rules.py)
    if problems:
        msg = f"{len(problems)} error(s) occurred:\n" + "\n".join(f"\t* {p}" for p in problems)
        raise Fail(msg)
    call.print(f"{cfg} is valid for {mode} mode")


def machineconfig_patch(call: Call) -> None:
    src = call.path_of(call.pos[0])
    try:
        with open(src, encoding="utf-8") as fh:
            docs = art.load_yaml_all(fh)
    except FileNotFoundError:
        raise Fail(f"open {call.pos[0]}: no such file or directory") from None
    try:
        docs = talos_patch.apply_specs(docs, call.flags.get("--patch", []), cwd=call.cwd)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    out = call.flag("--output")
    if out:
        _write(call.path_of(out), art.dump_docs(docs))
    else:
        call.print(art.dump_docs(docs).rstrip("\n"))


# ---------------------------------------------------------------- online commands
def _nodes_error(nodes: list[str], msg: str) -> Fail:
    lines = "\n".join(f"\t* {n}: {msg}" for n in nodes)
    return Fail(f"{len(nodes)} error{'s' if len(nodes) > 1 else ''} occurred:\n{lines}")


def bootstrap(call: Call) -> None:
    nodes, _, _ = client(call)
    call.injected_failure(nodes)
    recover = call.flag("--recover-from")
    if recover and not os.path.exists(call.path_of(recover)):
        raise Fail(f"open {recover}: no such file or directory")
    life.require_controlplane(call, nodes, "bootstrap")
    if call.state.get("bootstrapped") and not recover:
        raise Fail(
            "error executing bootstrap: rpc error: code = AlreadyExists "
            "desc = etcd data directory is not empty"
        )
    call.set("bootstrapped", True)
    life.count_bootstrap(call)


def _cluster_nodes(call: Call, nodes: list[str]) -> list[str]:
    named = call.multi("--control-plane-nodes") + call.multi("--worker-nodes")
    named += [x for x in [call.flag("--init-node")] if x]
    members = [m.get("ip") for m in call.state.get("members") or [] if m.get("ip")]
    return list(dict.fromkeys([*nodes, *(named or members)]))


def health(call: Call) -> None:
    nodes, _, _ = client(call)
    call.injected_failure(nodes)
    allnodes = _cluster_nodes(call, nodes)
    bad = [n for n in allnodes if n in set(call.state.get("unhealthy") or [])]
    call.eprint(f"discovered nodes: {json.dumps(allnodes)}")
    life.require_controlplane(call, nodes, "cluster health check")
    problem = life.health_problem(call, allnodes)
    if problem:  # the server-side check retries until --wait-timeout, then the stream ends so
        call.eprint(problem)
        raise Fail("rpc error: code = DeadlineExceeded desc = context deadline exceeded")
    for step in (
        "etcd to be healthy",
        "etcd members to be consistent across nodes",
        "apid to be ready",
        "all nodes memory sizes",
        "all nodes disk sizes",
        "kubelet to be healthy",
    ):
        call.eprint(f"waiting for {step}: OK")
    if bad:
        call.eprint("waiting for all nodes to finish boot sequence: ...")
        for n in bad:
            call.eprint(
                f"waiting for all nodes to finish boot sequence: node {n}: unexpected stage: booting"
            )
        raise Fail("rpc error: code = DeadlineExceeded desc = context deadline exceeded")
    for step in (
        "all nodes to finish boot sequence",
        "all k8s nodes to report",
        "all control plane static pods to be running",
        "all k8s nodes to report ready",
        "kube-proxy to report ready",
        "coredns to report ready",
    ):
        call.eprint(f"waiting for {step}: OK")


def _mark_after(call: Call, nodes: list[str]) -> None:
    after = (call.state.get("unhealthy_after") or {}).get(call.path) or []
    hit = [n for n in nodes if n in after]
    if hit:
        call.set("unhealthy", sorted({*(call.state.get("unhealthy") or []), *hit}))


# factory.talos.dev/metal-installer/<id>:<tag> (also installer/, -secureboot variants)
_FACTORY_INSTALLER = re.compile(
    r"^[^/]+/(?:[a-z0-9]+-)?installer(?:-secureboot)?/([0-9a-f]{64}):v\S+$"
)


def _node_version(call: Call, node: str) -> str:
    return str(
        (call.state.get("versions") or {}).get(node)
        or call.state.get("talos_version")
        or CLIENT_VERSION
    )


def upgrade(call: Call) -> None:
    nodes, _, _ = client(call)
    call.injected_failure(nodes)
    image = call.flag("--image") or art.DEFAULT_INSTALL_IMAGE
    upgraded = dict(call.state.get("upgraded") or {})
    versions = dict(call.state.get("versions") or {})
    schematics = dict(call.state.get("schematics") or {})
    booted = _FACTORY_INSTALLER.match(image)
    for n in nodes:
        upgraded[n] = image
        if ":" in image.rsplit("/", 1)[-1]:
            versions[n] = image.rsplit(":", 1)[1]
        if booted:  # the node now reports that schematic (a non-factory image drops it)
            schematics[n] = booted.group(1)
        else:
            schematics.pop(n, None)
    call.set("upgraded", upgraded)
    call.set("versions", versions)
    call.set("schematics", schematics)
    _mark_after(call, nodes)
    if not call.bool("--wait", True):
        call.print("NODE         ACK                        STARTED")
        for n in nodes:
            call.print(f"{n:<12} Upgrade request received   2026-11-26 10:00:00")
        return
    call.eprint(f"watching nodes: {json.dumps(nodes)}")
    for n in nodes:
        call.eprint(f"    * {n}: post check passed")


def upgrade_k8s(call: Call) -> None:
    nodes, _, _ = client(call)
    call.injected_failure(nodes)
    current = call.state.get("kubernetes_version", art.KUBERNETES_VERSION).lstrip("v")
    to = (call.flag("--to") or art.KUBERNETES_VERSION).lstrip("v")
    call.eprint(f"automatically detected the lowest Kubernetes version {current}")
    call.eprint(f"discovered controlplane nodes {json.dumps(nodes)}")
    call.eprint(f'updating "kube-apiserver" to version "{to}"')
    if not call.bool("--dry-run"):
        call.set("kubernetes_version", to)
        _mark_after(call, nodes)


def reset(call: Call) -> None:
    nodes, _, _ = client(call)
    call.injected_failure(nodes)
    done = list(call.state.get("reset") or [])
    call.set("reset", sorted({*done, *nodes}))
    labels = call.multi("--system-labels-to-wipe")
    wiped = dict(call.state.get("wiped") or {})
    for n in nodes:  # what the node lost: only those partitions, or the whole system disk
        wiped[n] = labels or ["whole system disk"]
    call.set("wiped", wiped)
    _mark_after(call, nodes)
    if call.bool("--wait", True):
        call.eprint(f"watching nodes: {json.dumps(nodes)}")
        for n in nodes:
            call.eprint(f"    * {n}: events check condition met")


def _power(call: Call, key: str, done: str) -> None:
    """reboot/shutdown: record the node; with --wait (default) print the watch lines."""
    nodes, _, _ = client(call)
    call.injected_failure(nodes)
    call.set(key, sorted({*(call.state.get(key) or []), *nodes}))
    if call.bool("--wait", True):
        call.eprint(f"watching nodes: {json.dumps(nodes)}")
        for n in nodes:
            call.eprint(f"    * {n}: {done}")


def reboot(call: Call) -> None:
    _power(call, "rebooted", "post check passed")


def shutdown(call: Call) -> None:
    _power(call, "shut_down", "events check condition met")


def apply_config(call: Call) -> None:
    nodes, _, _ = client(call)
    call.injected_failure(nodes)
    f = call.flag("--file") or (call.pos[0] if call.pos else None)
    if not f:
        raise Fail("no filename supplied for configuration")
    try:
        with open(call.path_of(f), encoding="utf-8") as fh:
            docs = art.load_yaml_all(fh)
    except FileNotFoundError:
        raise Fail(f"open {f}: no such file or directory") from None
    except yaml.YAMLError as exc:
        raise Fail(f"failed to parse config: {str(exc).splitlines()[0]}") from None
    if not docs or not isinstance(docs[0], dict):
        raise _nodes_error(nodes, "rpc error: code = InvalidArgument desc = failed to parse config")
    broken = validate_docs(docs)
    if broken:  # the node validates before it accepts anything (also in --dry-run)
        lines = "".join(f"\n\t* {b}" for b in broken)
        raise _nodes_error(
            nodes,
            "rpc error: code = InvalidArgument desc = configuration validation failed: "
            f"{len(broken)} error{'s' if len(broken) > 1 else ''} occurred:{lines}",
        )
    mode = call.flag("--mode") or "auto"
    if call.bool("--dry-run"):
        call.print(_dry_run_summary(call, nodes, docs, mode))
        return
    applied = dict(call.state.get("applied") or {})
    for n in nodes:
        applied[n] = {
            "file": call.path_of(f),
            "mode": mode,
            "insecure": call.bool("--insecure"),
            "config": art.dump_docs(docs),  # the node keeps its own copy
        }
    call.set("applied", applied)
    _mark_after(call, nodes)
    life.after_apply(call, nodes)
    word = {
        "reboot": "Applied configuration with a reboot",
        "no-reboot": "Applied configuration without a reboot",
        "staged": "Staged configuration to be applied after a reboot",
        "try": "Applied configuration without a reboot (try mode)",
    }
    call.print(word.get(mode, "Applied configuration with a reboot"))


def _dry_run_summary(call: Call, nodes: list[str], docs: list[Any], mode: str) -> str:
    """What talosctl prints for `apply-config --dry-run`: the mode it would use and a unified diff
    of the node's current config against the new one (nothing applied yet: maintenance mode)."""
    import difflib

    old_text = ((call.state.get("applied") or {}).get(nodes[0]) or {}).get("config")
    new_text = art.dump_docs(docs)
    if not old_text or call.bool("--insecure"):
        return (
            "Dry run summary:\nNode is running in maintenance mode and does not have a config yet."
        )
    diff = "".join(
        difflib.unified_diff(
            old_text.splitlines(True),
            new_text.splitlines(True),
            "a/machineconfig",
            "b/machineconfig",
        )
    )
    how = {"no-reboot": "without a reboot", "staged": "staged for the next reboot"}.get(
        mode, "without a reboot" if mode in ("auto", "try") else "with a reboot"
    )
    return (
        f"Dry run summary:\nApplied configuration {how} (skipped in dry-run).\n\n"
        f"Config diff:\n\n{diff or 'No changes.'}"
    )


def version(call: Call) -> None:
    tag = CLIENT_VERSION
    short = call.bool("--short")
    call.print("Client:")
    call.print(
        f"\tTalos {tag}"
        if short
        else f"\tTag:         {tag}\n\tSHA:         4b7d4c41\n\tBuilt:       \n\tGo version:  go1.25.4\n\tOS/Arch:     linux/amd64"
    )
    if call.bool("--client"):
        return
    nodes, _, _ = client(call)
    call.injected_failure(nodes)
    call.print("Server:")
    for n in nodes:
        server = _node_version(call, n)
        call.print(f"\tNODE:        {n}")
        call.print(f"\tTag:         {server}" if not short else f"\tTalos {server}")
        if not short:
            call.print(
                "\tSHA:         4b7d4c41\n\tBuilt:       \n\tGo version:  go1.25.4\n\tOS/Arch:     linux/arm64\n\tEnabled:     RBAC"
            )


def kubeconfig(call: Call) -> None:
    nodes, _, _ = client(call, single="kubeconfig")
    call.injected_failure(nodes)
    life.require_controlplane(call, nodes, "kubeconfig")
    target = call.pos[0] if call.pos else os.path.join(call.home(), ".kube", "config")
    # the cluster name: from the state, else the talosconfig's current context (as gen config names it)
    cfgname = call.state.get("cluster_name")
    cfg_path = _talosconfig_path(call)
    if not cfgname and os.path.exists(cfg_path):
        cfgname = _load_talosconfig(cfg_path).get("context")
    server = call.state.get("k8s_endpoint") or f"https://{nodes[0]}:6443"
    doc = art.kubeconfig(cfgname or "talos", server)
    if target == "-":
        call.print(art.dump_yaml(doc).rstrip("\n"))
        return
    path = call.path_of(target)
    if os.path.isdir(path):
        path = os.path.join(path, "kubeconfig")
    merge = call.bool("--merge", True)
    force = call.bool("--force")
    if os.path.exists(path) and merge:
        with open(path, encoding="utf-8") as fh:
            old = art.load_yaml(fh) or {}
        for key in ("clusters", "users", "contexts"):
            names = {x["name"] for x in doc[key]}
            keep = [x for x in old.get(key) or [] if x.get("name") not in names or not force]
            clash = [x for x in old.get(key) or [] if x.get("name") in names and not force]
            for item in doc[key]:
                if clash:  # real talosctl renames on conflict unless --force
                    item["name"] = item["name"] + "-1"
            old[key] = keep + doc[key]
        old["current-context"] = doc["contexts"][0]["name"]
        doc = {**doc, **old}
    elif os.path.exists(path) and not force:
        raise Fail(f'kubeconfig file already exists, use --force to overwrite: "{path}"')
    _write(path, art.dump_yaml(doc))


def etcd_snapshot(call: Call) -> None:
    nodes, _, _ = client(call, single="etcd snapshot")
    call.injected_failure(nodes)
    path = call.path_of(call.pos[0])
    src = call.state.get("etcd_snapshot_source")
    try:
        data = art.write_snapshot(path, src)
    except OSError as exc:
        raise Fail(f"error creating temporary file: {exc}") from None
    call.print(f'etcd snapshot saved to "{call.pos[0]}" ({len(data)} bytes)'.replace("'", '"'))
    h = int.from_bytes(hashlib.sha256(data).digest()[:4], "big")
    call.print(
        f"snapshot info: hash {h:08x}, revision {1200 + len(data) // 4096}, total keys "
        f"{len(data) // 300}, total size {len(data) - 32}"
    )


def get(call: Call) -> None:
    if call.pos[0].lower() in talos_resources.TYPES:  # disks, links: maintenance mode too
        return talos_resources.get(call, client)
    nodes, _, _ = client(call)
    call.injected_failure(nodes)
    rtype = call.pos[0].lower()
    fmt = call.flag("--output") or "table"
    unhealthy = set(call.state.get("unhealthy") or [])
    items: list[dict[str, Any]] = []
    if rtype in ("members", "member"):
        members = call.state.get("members") or [
            {"hostname": f"talos-{n.split('.')[-1]}", "ip": n, "type": "controlplane"}
            for n in nodes
        ]
        for n in nodes:
            for m in members:
                items.append(
                    {
                        "node": n,
                        "metadata": {
                            "namespace": "cluster",
                            "type": "Members.cluster.talos.dev",
                            "id": m["hostname"],
                            "version": 1,
                            "phase": "running",
                        },
                        "spec": {
                            "nodeId": hashlib.sha1(m["hostname"].encode()).hexdigest()[:22],
                            "addresses": [m["ip"]],
                            "hostname": m["hostname"],
                            "machineType": m.get("type", "controlplane"),
                            "operatingSystem": f"Talos ({call.state.get('talos_version') or CLIENT_VERSION})",
                        },
                    }
                )
    elif rtype in ("machinestatus", "machinestatuses"):
        for n in nodes:
            ready = n not in unhealthy
            items.append(
                {
                    "node": n,
                    "metadata": {
                        "namespace": "runtime",
                        "type": "MachineStatuses.runtime.talos.dev",
                        "id": "machine",
                        "version": 3,
                        "phase": "running",
                    },
                    "spec": {
                        "stage": "running" if ready else "booting",
                        "status": {
                            "ready": ready,
                            "unmetConditions": []
                            if ready
                            else [{"name": "nodeReady", "reason": "node not ready"}],
                        },
                    },
                }
            )
    elif rtype in ("extensions", "extensionstatus", "extensionstatuses", "es"):
        items = _extension_items(call, nodes)
    if fmt == "json":
        for it in items:
            call.print(json.dumps(it, indent=4))
    elif fmt == "yaml":
        call.print("---\n".join(yaml.safe_dump(it, sort_keys=False) for it in items).rstrip("\n"))
    else:
        call.print("NODE         NAMESPACE   TYPE   ID   VERSION")
        for it in items:
            md = it["metadata"]
            call.print(
                f"{it['node']}   {md['namespace']}   {md['type'].split('.')[0]}   {md['id']}   {md['version']}"
            )


def _extension_items(call: Call, nodes: list[str]) -> list[dict[str, Any]]:
    """ExtensionStatus resources as the real node lists them: the installed extensions
    (state `extensions`), then the Image Factory's "schematic" pseudo-extension whose version is
    the booted schematic id (state `schematics`), ids "0", "1", ... per node."""
    items: list[dict[str, Any]] = []
    for n in nodes:
        layers = [dict(e) for e in call.state.get("extensions") or []]
        sid = (call.state.get("schematics") or {}).get(n)
        if sid:
            layers.append({"name": "schematic", "version": sid})
        for i, layer in enumerate(layers):
            meta: dict[str, Any] = {"name": layer["name"], "version": layer["version"]}
            if layer["name"] == "schematic":
                meta["description"] = (
                    "This is a virtual extension that carries the schematic ID of the image"
                )
            else:
                meta["author"] = "Sidero Labs"
                meta["compatibility"] = {"talos": {"version": ">= v1.13.0"}}
            items.append(
                {
                    "node": n,
                    "metadata": {
                        "namespace": "runtime",
                        "type": "ExtensionStatuses.runtime.talos.dev",
                        "id": str(i),
                        "version": 1,
                        "owner": "runtime.ExtensionStatusController",
                        "phase": "running",
                    },
                    "spec": {"image": f"{i}.sqsh", "metadata": meta},
                }
            )
    return items


def etcd_members(call: Call) -> None:
    """`talosctl etcd members`: the real tab-aligned table once etcd runs (bootstrapped, node not
    in `etcd_down`); before that the API answers with an error per node."""
    nodes, _, _ = client(call)
    call.injected_failure(nodes)
    life.require_controlplane(call, nodes, "member list")
    down = set(call.state.get("etcd_down") or [])
    if not call.state.get("bootstrapped") or down & set(nodes):
        bad = [n for n in nodes if n in down or not call.state.get("bootstrapped")]
        raise _nodes_error(
            bad, "rpc error: code = Unavailable desc = etcd is not running on this node"
        )
    members = [m for m in call.state.get("members") or [] if m.get("type") != "worker"]
    members = members or [{"hostname": f"talos-{n.split('.')[-1]}", "ip": n} for n in nodes]
    rows = [("NODE", "ID", "HOSTNAME", "PEER URLS", "CLIENT URLS", "LEARNER")]
    for n in nodes:
        for m in members:
            mid = hashlib.sha256(m["hostname"].encode()).hexdigest()[:16]
            rows.append(
                (
                    n,
                    mid,
                    m["hostname"],
                    f"https://{m['ip']}:2380",
                    f"https://{m['ip']}:2379",
                    "false",
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:  # Go tabwriter, padding 3
        call.print("".join(c.ljust(w + 3) for c, w in zip(r, widths, strict=True)).rstrip())


def config_edit(call: Call) -> None:
    """config endpoint/node/context/merge/info/contexts on the talosconfig file."""
    path = _talosconfig_path(call)
    sub = call.path.split()[1]
    if sub == "merge":
        new = _load_talosconfig(call.path_of(call.pos[0]))
        cfg = _load_talosconfig(path) if os.path.exists(path) else {"contexts": {}}
        cfg.setdefault("contexts", {}).update(new.get("contexts") or {})
        cfg["context"] = new.get("context")
        _write(path, art.dump_yaml(cfg))
        return
    cfg = _load_talosconfig(path)
    name = call.flag("--context") or cfg.get("context")
    ctx = (cfg.get("contexts") or {}).get(name)
    if sub in ("endpoint", "node", "context") and ctx is None and sub != "context":
        raise Fail(f'context "{name}" is not defined')
    if sub == "endpoint":
        ctx["endpoints"] = call.pos
    elif sub == "node":
        ctx["nodes"] = call.pos
    elif sub == "context":
        if call.pos[0] not in (cfg.get("contexts") or {}):
            raise Fail(f'context "{call.pos[0]}" is not defined')
        cfg["context"] = call.pos[0]
    elif sub in ("info", "contexts"):
        call.print(
            f"Current context:     {name}\nNodes:               {', '.join((ctx or {}).get('nodes') or []) or 'not defined'}\nEndpoints:           {', '.join((ctx or {}).get('endpoints') or [])}"
        )
        return
    _write(path, art.dump_yaml(cfg))


def generic(call: Call) -> None:
    """Any other command the contract accepts: needs a working client config, prints nothing."""
    if call.path.split()[0] in ("gen", "cluster", "completion", "docs", "inject", "machineconfig"):
        return
    nodes, _, _ = client(call)
    call.injected_failure(nodes)


HANDLERS = {
    "gen secrets": gen_secrets,
    "gen config": gen_config,
    "validate": validate,
    "machineconfig patch": machineconfig_patch,
    "bootstrap": bootstrap,
    "health": health,
    "upgrade": upgrade,
    "upgrade-k8s": upgrade_k8s,
    "reset": reset,
    "reboot": reboot,
    "shutdown": shutdown,
    "apply-config": apply_config,
    "version": version,
    "kubeconfig": kubeconfig,
    "etcd snapshot": etcd_snapshot,
    "etcd members": etcd_members,
    "get": get,
    **{
        f"config {s}": config_edit
        for s in ("endpoint", "node", "context", "merge", "info", "contexts")
    },
}
