"""Fetching one Helm chart: from a chart repository or an OCI registry, then keeping its values.

Chart repository (Helm's `index.yaml`): `<repo>/index.yaml`, the entry of the chart at the
version, its first URL (relative to the repository or absolute), the .tgz verified against the
pin and against the entry's `digest`.
OCI registry (the distribution API, as Flux's source-controller and `helm pull oci://` use it):
GET /v2/<name>/manifests/<tag>; a 401 names the token endpoint in `WWW-Authenticate: Bearer
realm=...,service=...,scope=...`, whose anonymous token is sent as `Authorization: Bearer`.
The manifest is verified against the pin, and its Helm chart layer
(application/vnd.cncf.helm.chart.content.v1.tar+gzip) against the digest the manifest gives.
Plain http is used only for a loopback registry (tests, a local mirror).
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import os
import posixpath
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlparse

from ..download import http_get
from ..errors import DomumError, VerifyError

CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json"
LIMIT = 64 << 20
KEEP = ("Chart.yaml", "values.yaml", "values.schema.json")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ok(url: str, status: int) -> None:
    if status != 200:
        raise DomumError(f"chart download failed: {url}: HTTP {status}")


def fetch_helm(repo: str, name: str, version: str, pin: str) -> bytes:
    import yaml

    index_url = f"{repo.rstrip('/')}/index.yaml"
    status, _, body = http_get(index_url, limit=LIMIT)
    _ok(index_url, status)
    entries = (yaml.safe_load(body) or {}).get("entries") or {}
    bare = version.removeprefix("v")
    entry = next(
        (e for e in entries.get(name) or [] if str(e.get("version", "")).removeprefix("v") == bare),
        None,
    )
    if entry is None or not entry.get("urls"):
        raise DomumError(f"chart {name} {version} is not in {index_url}")
    url = urljoin(f"{repo.rstrip('/')}/", str(entry["urls"][0]))
    status, _, tarball = http_get(url, limit=LIMIT)
    _ok(url, status)
    got = _sha(tarball)
    if got != pin:
        raise VerifyError(
            f"sha256 mismatch for {url}: expected {pin} (pinned in domum_tasks/tools/"
            f"chart_pins.py), got {got}; nothing installed"
        )
    if entry.get("digest") and entry["digest"] != got:
        raise VerifyError(f"{url} does not match the digest in {index_url}; nothing installed")
    return tarball


def _registry(url: str) -> tuple[str, str]:
    """oci://host[:port]/path -> (base URL of the registry API, repository name)."""
    parts = urlparse(url)
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    scheme = "http" if loopback else "https"
    return f"{scheme}://{parts.netloc}", parts.path.strip("/")


def _token(challenge: str) -> str:
    """The anonymous bearer token a registry's 401 challenge points at."""
    fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    if not challenge.lower().startswith("bearer") or "realm" not in fields:
        raise DomumError(f"registry asks for authentication Domum cannot give: {challenge}")
    query = {k: v for k, v in fields.items() if k in ("service", "scope")}
    url = f"{fields['realm']}?{urlencode(query)}" if query else fields["realm"]
    status, _, body = http_get(url)
    _ok(url, status)
    answer = json.loads(body)
    token = answer.get("token") or answer.get("access_token")
    if not token:
        raise DomumError(f"no token in the answer of {fields['realm']}")
    return str(token)


def _get(url: str, headers: dict[str, str], auth: dict[str, str]) -> bytes:
    status, got, body = http_get(url, {**headers, **auth}, limit=LIMIT)
    if status == 401 and not auth:
        challenge = next((v for k, v in got.items() if k.lower() == "www-authenticate"), "")
        auth["Authorization"] = f"Bearer {_token(challenge)}"
        status, got, body = http_get(url, {**headers, **auth}, limit=LIMIT)
    _ok(url, status)
    return body


def fetch_oci(url: str, tag: str, pin: str) -> bytes:
    base, name = _registry(url)
    auth: dict[str, str] = {}
    manifest_url = f"{base}/v2/{name}/manifests/{tag}"
    manifest = _get(manifest_url, {"Accept": MANIFEST_TYPES}, auth)
    got = _sha(manifest)
    if got != pin:
        raise VerifyError(
            f"sha256 mismatch for the manifest {manifest_url}: expected {pin} (pinned in "
            f"domum_tasks/tools/chart_pins.py or the OCIRepository's ref.digest), got {got}"
        )
    layers = json.loads(manifest).get("layers") or []
    layer = next((x for x in layers if x.get("mediaType") == CHART_LAYER), None)
    if layer is None:
        raise DomumError(f"{manifest_url} has no Helm chart layer ({CHART_LAYER})")
    digest = str(layer.get("digest", ""))
    blob = _get(f"{base}/v2/{name}/blobs/{digest}", {}, auth)
    if f"sha256:{_sha(blob)}" != digest:
        raise VerifyError(f"the chart layer of {manifest_url} does not match its digest {digest}")
    return blob


def _refs(schema: Any) -> set[str]:
    """Relative $refs (no scheme, not a bare fragment) anywhere in a schema."""
    found: set[str] = set()
    todo = [schema]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not urlparse(ref).scheme and not ref.startswith("#"):
                found.add(ref.split("#", 1)[0])
            todo += list(node.values())
        elif isinstance(node, list):
            todo += node
    return found


def _keep(files: dict[str, bytes], out: Path) -> None:
    """One chart's files (paths relative to its directory), and its packaged dependencies."""
    wanted = [k for k in KEEP if k in files]
    todo = ["values.schema.json"] if "values.schema.json" in files else []
    while todo:  # the JSON files the schema pulls in by relative path
        rel = todo.pop()
        for ref in _refs(json.loads(files[rel])):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), ref))
            if target in files and target not in wanted and not target.startswith(".."):
                wanted.append(target)
                todo.append(target)
    for rel in wanted:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(files[rel])
    subdirs = {r.split("/")[1] for r in files if r.startswith("charts/") and r.count("/") >= 2}
    for sub in subdirs - {"", ".", ".."}:
        prefix = f"charts/{sub}/"
        _keep(
            {r[len(prefix) :]: b for r, b in files.items() if r.startswith(prefix)},
            out / "charts" / sub,
        )
    for rel, data in files.items():
        if re.fullmatch(r"charts/[^/]+\.tgz", rel):
            _unpack_into(data, out / "charts")


def _unpack_into(tarball: bytes, parent: Path) -> None:
    """A chart archive: one top directory named after the chart."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for m in tar.getmembers():
            if m.isfile() and (m.name.endswith((".json", ".yaml", ".tgz"))):
                fh = tar.extractfile(m)
                if fh is not None:
                    files[m.name] = fh.read()
    tops = {n.split("/", 1)[0] for n in files if "/" in n}
    for top in tops:
        if top in ("", ".", ".."):
            continue
        prefix = f"{top}/"
        _keep({n[len(prefix) :]: b for n, b in files.items() if n.startswith(prefix)}, parent / top)


def unpack(tarball: bytes, dest: Path, pin: str) -> None:
    """Keep the chart's values files in `dest` (replaced whole), with the pin it matched."""
    part = dest.parent / f".{dest.name}.part"
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        _unpack_into(tarball, part)
        tops = [p for p in part.iterdir() if p.is_dir()]
        if len(tops) != 1:
            raise DomumError(f"the chart archive for {dest} has {len(tops)} top directories")
        (tops[0] / ".sha256").write_text(pin + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tops[0], dest)
    finally:
        shutil.rmtree(part, ignore_errors=True)
