"""Realistic files written by the talosctl stand-in: secrets bundle, machine configs, talosconfig,
kubeconfig and etcd snapshots (config patching: talos_patch.py).

Used by `fakecli.py` (run as a script) and importable from tests (`tests.fakes.artifacts`), e.g.
`verify_snapshot(path)`. Only the standard library and PyYAML.

Formats follow talosctl v1.13:
- secrets bundle (`talosctl gen secrets`): `cluster.{id,secret}`, `secrets.{bootstraptoken,
  secretboxencryptionsecret}`, `trustdinfo.token`, `certs.{etcd,k8s,k8saggregator,k8sserviceaccount,os}`
  each with base64-encoded PEM `crt`/`key` (the service account has only `key`);
- machine config: classic `version: v1alpha1` document with `machine.install` (valid against
  `talos-config.v1.13.schema.json`), followed by any extra `apiVersion`/`kind` documents from patches;
- etcd snapshot: a bbolt database (page size 4096: two meta pages with magic 0xED0CDAED and FNV-1a
  checksums, a freelist page and an empty root leaf page) followed by the 32-byte SHA-256 of all
  preceding bytes, so `size % 512 == 32` exactly as etcd's snapshot API streams it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets as _rnd
import struct
from typing import Any
from urllib.parse import urlparse

import yaml


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (only true/false), as Go's yaml.v3 reads Talos configs:
    `auto: off` stays the string "off" instead of PyYAML's YAML 1.1 False."""


Yaml12Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: Any) -> Any:
    return yaml.load(text, Loader=Yaml12Loader)


def load_yaml_all(text: Any) -> list[Any]:
    return [d for d in yaml.load_all(text, Loader=Yaml12Loader) if d is not None]


TALOS_VERSION = "v1.13.9"
KUBERNETES_VERSION = (
    "1.35.4"  # talosctl's own default differs per release; tasks pass it explicitly
)
DEFAULT_INSTALL_IMAGE = f"ghcr.io/siderolabs/installer:{TALOS_VERSION}"
OUTPUT_TYPES = ("controlplane", "worker", "talosconfig")


# ---------------------------------------------------------------- secrets bundle
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pem(kind: str, body_len: int) -> str:
    body = base64.b64encode(_rnd.token_bytes(body_len)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----\n"


def _pair(key_kind: str = "EC PRIVATE KEY") -> dict[str, str]:
    return {
        "crt": _b64(_pem("CERTIFICATE", 360).encode()),
        "key": _b64(_pem(key_kind, 90).encode()),
    }


def _token() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    pick = lambda n: "".join(_rnd.choice(alphabet) for _ in range(n))  # noqa: E731
    return f"{pick(6)}.{pick(16)}"


def new_secrets_bundle() -> dict[str, Any]:
    return {
        "cluster": {"id": _b64(_rnd.token_bytes(32)), "secret": _b64(_rnd.token_bytes(32))},
        "secrets": {
            "bootstraptoken": _token(),
            "secretboxencryptionsecret": _b64(_rnd.token_bytes(32)),
        },
        "trustdinfo": {"token": _token()},
        "certs": {
            "etcd": _pair(),
            "k8s": _pair(),
            "k8saggregator": _pair(),
            "k8sserviceaccount": {"key": _b64(_pem("EC PRIVATE KEY", 90).encode())},
            "os": _pair("ED25519 PRIVATE KEY"),
        },
    }


def dump_yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, indent=4)


def load_secrets_bundle(path: str) -> dict[str, Any]:
    """Parse a bundle; raise ValueError (talosctl-like) if it is not one."""
    with open(path, encoding="utf-8") as fh:
        doc = load_yaml(fh)
    if not isinstance(doc, dict):
        raise ValueError(f"failed to load secrets bundle: {path}: not a YAML mapping")
    for section, keys in (
        ("cluster", ("id", "secret")),
        ("secrets", ("bootstraptoken",)),
        ("trustdinfo", ("token",)),
        ("certs", ("etcd", "k8s", "k8saggregator", "k8sserviceaccount", "os")),
    ):
        part = doc.get(section)
        if not isinstance(part, dict) or any(k not in part for k in keys):
            raise ValueError(f"failed to load secrets bundle: {path}: missing {section}.{keys}")
    return doc


# ---------------------------------------------------------------- machine config
def _k8s(version: str) -> str:
    return version.lstrip("v")


def machine_config(
    kind: str,
    cluster_name: str,
    endpoint: str,
    bundle: dict[str, Any],
    *,
    kubernetes_version: str = KUBERNETES_VERSION,
    install_image: str = DEFAULT_INSTALL_IMAGE,
    install_disk: str = "/dev/sda",
    dns_domain: str = "cluster.local",
    additional_sans: list[str] | None = None,
    discovery: bool = True,
) -> dict[str, Any]:
    """The v1alpha1 document `talosctl gen config` writes for `kind` (controlplane or worker)."""
    certs = bundle["certs"]
    k8s = _k8s(kubernetes_version)
    cp = kind == "controlplane"
    host = urlparse(endpoint).hostname or endpoint
    sans = list(additional_sans or [])
    machine: dict[str, Any] = {
        "type": kind,
        "token": bundle["trustdinfo"]["token"],
        "ca": {"crt": certs["os"]["crt"], "key": certs["os"]["key"] if cp else ""},
        "certSANs": sans,
        "kubelet": {
            "image": f"ghcr.io/siderolabs/kubelet:v{k8s}",
            "defaultRuntimeSeccompProfileEnabled": True,
            "disableManifestsDirectory": True,
        },
        "install": {"disk": install_disk, "image": install_image, "wipe": False},
        "features": {
            "diskQuotaSupport": True,
            "kubePrism": {"enabled": True, "port": 7445},
            "hostDNS": {"enabled": True, "forwardKubeDNSToHost": True},
        },
    }
    if cp:
        machine["nodeLabels"] = {"node.kubernetes.io/exclude-from-external-load-balancers": ""}
    cluster: dict[str, Any] = {
        "id": bundle["cluster"]["id"],
        "secret": bundle["cluster"]["secret"],
        "controlPlane": {"endpoint": endpoint},
        "clusterName": cluster_name,
        "network": {
            "dnsDomain": dns_domain,
            "podSubnets": ["10.244.0.0/16"],
            "serviceSubnets": ["10.96.0.0/12"],
        },
        "token": bundle["secrets"]["bootstraptoken"],
        "ca": {"crt": certs["k8s"]["crt"], "key": certs["k8s"]["key"] if cp else ""},
        "discovery": {
            "enabled": discovery,
            "registries": {"kubernetes": {"disabled": True}, "service": {}},
        },
    }
    if cp:
        cluster.update(
            {
                "secretboxEncryptionSecret": bundle["secrets"]["secretboxencryptionsecret"],
                "aggregatorCA": dict(certs["k8saggregator"]),
                "serviceAccount": {"key": certs["k8sserviceaccount"]["key"]},
                "apiServer": {
                    "image": f"registry.k8s.io/kube-apiserver:v{k8s}",
                    "certSANs": [host, *sans],
                },
                "controllerManager": {"image": f"registry.k8s.io/kube-controller-manager:v{k8s}"},
                "proxy": {"image": f"registry.k8s.io/kube-proxy:v{k8s}"},
                "scheduler": {"image": f"registry.k8s.io/kube-scheduler:v{k8s}"},
                "etcd": {"ca": dict(certs["etcd"])},
                "extraManifests": [],
                "inlineManifests": [],
            }
        )
    return {"version": "v1alpha1", "debug": False, "machine": machine, "cluster": cluster}


def hostname_doc() -> dict[str, Any]:
    """The HostnameConfig `talosctl gen config` emits since Talos 1.12 (multi-doc network
    config): `auto: stable` (pkg/machinery/config/generate/network.go)."""
    return {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "stable"}


def registry_mirror_docs(mirrors: dict[str, str]) -> list[dict[str, Any]]:
    """--registry-mirror host=url: since Talos 1.12 a RegistryMirrorConfig document per host."""
    return [
        {
            "apiVersion": "v1alpha1",
            "kind": "RegistryMirrorConfig",
            "name": host,
            "endpoints": [{"url": url}],
        }
        for host, url in mirrors.items()
    ]


def talosconfig(cluster_name: str, endpoint: str, bundle: dict[str, Any]) -> dict[str, Any]:
    """What gen config writes: one context, endpoints = the cluster endpoint's host, no nodes."""
    host = urlparse(endpoint).hostname or endpoint
    return {
        "context": cluster_name,
        "contexts": {
            cluster_name: {
                "endpoints": [host],
                "ca": bundle["certs"]["os"]["crt"],
                "crt": _b64(_pem("CERTIFICATE", 300).encode()),
                "key": _b64(_pem("ED25519 PRIVATE KEY", 48).encode()),
            }
        },
    }


def kubeconfig(cluster_name: str, server: str) -> dict[str, Any]:
    ctx = f"admin@{cluster_name}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": _b64(_pem("CERTIFICATE", 360).encode()),
                },
            }
        ],
        "users": [
            {
                "name": ctx,
                "user": {
                    "client-certificate-data": _b64(_pem("CERTIFICATE", 360).encode()),
                    "client-key-data": _b64(_pem("EC PRIVATE KEY", 90).encode()),
                },
            }
        ],
        "contexts": [
            {"name": ctx, "context": {"cluster": cluster_name, "namespace": "default", "user": ctx}}
        ],
        "current-context": ctx,
    }


def dump_docs(docs: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False, indent=4) for d in docs)


# ---------------------------------------------------------------- etcd snapshot
BOLT_MAGIC = 0xED0CDAED
BOLT_PAGE = 4096


def _fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def bbolt_db(extra_pages: int = 0) -> bytes:
    """An empty-but-valid bbolt file as bolt.Open creates it (meta, meta, freelist, root leaf),
    optionally padded with free pages so sizes vary like real snapshots."""
    pages = []
    high_water = 4 + extra_pages
    for txid in (0, 1):
        # meta: magic, version, pageSize, flags, root{pgid, seq}, freelist, pgid, txid, checksum
        meta = struct.pack("<IIIIQQQQQ", BOLT_MAGIC, 2, BOLT_PAGE, 0, 3, 0, 2, high_water, txid)
        meta += struct.pack("<Q", _fnv1a64(meta))
        header = struct.pack("<QHHI", txid, 0x04, 0, 0)
        pages.append((header + meta).ljust(BOLT_PAGE, b"\0"))
    free = list(range(4, 4 + extra_pages))  # padding pages are free, so bbolt's check passes
    freelist = struct.pack("<QHHI", 2, 0x10, len(free), 0) + struct.pack(f"<{len(free)}Q", *free)
    pages.append(freelist.ljust(BOLT_PAGE, b"\0"))
    pages.append(struct.pack("<QHHI", 3, 0x02, 0, 0).ljust(BOLT_PAGE, b"\0"))  # root leaf
    pages.extend(
        struct.pack("<QHHI", 4 + i, 0x02, 0, 0).ljust(BOLT_PAGE, b"\0") for i in range(extra_pages)
    )
    return b"".join(pages)


def with_sha256_trailer(db: bytes) -> bytes:
    """etcd's snapshot stream: the db (a multiple of 512 bytes) + SHA-256 of it."""
    if len(db) % 512:
        db = db.ljust(len(db) + 512 - len(db) % 512, b"\0")
    return db + hashlib.sha256(db).digest()


def write_snapshot(path: str, source: str | None = None) -> bytes:
    """Write a snapshot to path (via path.part + rename, like talosctl); `source` is an existing
    snapshot file (e.g. from a real `etcdctl snapshot save`) to copy instead of synthesising."""
    if source:
        with open(source, "rb") as fh:
            data = fh.read()
    else:
        data = with_sha256_trailer(bbolt_db(extra_pages=_rnd.randbelow(4)))
    part = path + ".part"
    with open(part, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(part, path)
    return data


def verify_snapshot(path: str) -> str | None:
    """None if the file is a well-formed snapshot, else the reason (talosctl/etcd wording)."""
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) % 512 != 32:
        return "sha256 checksum not found"
    if hashlib.sha256(data[:-32]).digest() != data[-32:]:
        return "expected sha256 does not match the snapshot's contents"
    if struct.unpack_from("<I", data, 16)[0] != BOLT_MAGIC:
        return "invalid database: bbolt magic not found"
    return None
