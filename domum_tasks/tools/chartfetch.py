"""Fetching one Helm chart: from a chart repository or an OCI registry, then keeping its values.

Each fetch has an expected digest (a pin in tools/chart_pins.py, the tree's `ref.digest`, or
config/charts.lock) or, on first use, none: then the digest the source publishes is the
reference and is returned for the lock (trust model: tools/chartlock.py).

Chart repository (Helm's `index.yaml`): `<repo>/index.yaml`, the entry of the chart at the
version, its first URL (relative to the repository or absolute), the .tgz verified against the
expected digest and against the entry's `digest` (an entry without one is refused on first use).
OCI registry (the distribution API, as Flux's source-controller and `helm pull oci://` use it):
GET /v2/<name>/manifests/<tag>; a 401 names the token endpoint in `WWW-Authenticate: Bearer
realm=...,service=...,scope=...`, whose anonymous token is sent as `Authorization: Bearer`.
The manifest's sha256 is computed here from the bytes received (and checked against the
registry's Docker-Content-Digest when it sends one), compared with the expected digest, and its
Helm chart layer (application/vnd.cncf.helm.chart.content.v1.tar+gzip) is checked against the
digest the manifest gives. Only https, or plain http to a loopback host (tests, a local mirror).
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


def _mismatch(name: str, version: str, url: str, expected: str, how: str, got: str) -> VerifyError:
    return VerifyError(
        f"chart {name} {version}: sha256 mismatch for {url}: expected {expected} ({how}), "
        f"got {got}; nothing installed"
    )


def _published(entry: dict[str, Any]) -> str:
    """The digest an index.yaml entry publishes: Helm writes the hex sha256 of the .tgz
    (helm/helm pkg/repo/index.go, IndexDirectory: provenance.DigestFile); "" when absent."""
    digest = str(entry.get("digest") or "").strip().lower().removeprefix("sha256:")
    return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else ""


def fetch_helm(
    repo: str, name: str, version: str, expected: str | None, how: str
) -> tuple[bytes, str]:
    """The chart's .tgz and its sha256. `expected`: the pinned or recorded digest; None on
    first use, when the index entry's own `digest` is the only reference (none: refused)."""
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
    published = _published(entry)
    if expected is None and not published:
        raise VerifyError(
            f"chart {name} {version}: {index_url} publishes no sha256 digest for it, and none is "
            "pinned or recorded; refusing to fetch it unverified (pin it in "
            "domum_tasks/tools/chart_pins.py, or set DOMUM_CHARTS)"
        )
    url = urljoin(f"{repo.rstrip('/')}/", str(entry["urls"][0]))
    status, _, tarball = http_get(url, limit=LIMIT)
    _ok(url, status)
    got = _sha(tarball)
    if expected is None:
        expected, how = published, f"published in {index_url}, first use"
    if got != expected:
        raise _mismatch(name, version, url, expected, how, got)
    if published and published != got:
        raise VerifyError(
            f"chart {name} {version}: {url} matches {how}, but {index_url} now publishes "
            f"{published}; nothing installed"
        )
    return tarball, got


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


def _get(url: str, headers: dict[str, str], auth: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    status, got, body = http_get(url, {**headers, **auth}, limit=LIMIT)
    if status == 401 and not auth:
        challenge = next((v for k, v in got.items() if k.lower() == "www-authenticate"), "")
        auth["Authorization"] = f"Bearer {_token(challenge)}"
        status, got, body = http_get(url, {**headers, **auth}, limit=LIMIT)
    _ok(url, status)
    return body, got


def fetch_oci(url: str, tag: str, expected: str | None, how: str) -> tuple[bytes, str]:
    """The chart layer and the sha256 of the manifest naming it. `expected`: the pinned or
    recorded manifest digest; None on first use, when the digest of the bytes the registry
    served for the tag (over HTTPS) is what gets recorded."""
    base, name = _registry(url)
    chart = name.rsplit("/", 1)[-1]
    auth: dict[str, str] = {}
    manifest_url = f"{base}/v2/{name}/manifests/{tag}"
    manifest, headers = _get(manifest_url, {"Accept": MANIFEST_TYPES}, auth)
    got = _sha(manifest)
    # The registry's own statement of the digest (distribution spec: Docker-Content-Digest):
    # when it gives one, it must be the digest of the bytes it sent.
    said = next((v for k, v in headers.items() if k.lower() == "docker-content-digest"), "")
    if said and said.strip().lower() != f"sha256:{got}":
        raise VerifyError(
            f"chart {chart} {tag}: {manifest_url} says its digest is {said}, the bytes it sent "
            f"hash to sha256:{got}; nothing installed"
        )
    if expected is not None and got != expected:
        raise _mismatch(chart, tag, f"the manifest {manifest_url}", expected, how, got)
    layers = json.loads(manifest).get("layers") or []
    layer = next((x for x in layers if x.get("mediaType") == CHART_LAYER), None)
    if layer is None:
        raise DomumError(f"{manifest_url} has no Helm chart layer ({CHART_LAYER})")
    digest = str(layer.get("digest", ""))
    blob, _ = _get(f"{base}/v2/{name}/blobs/{digest}", {}, auth)
    if f"sha256:{_sha(blob)}" != digest:
        raise VerifyError(
            f"chart {chart} {tag}: the chart layer of {manifest_url} does not match its digest "
            f"{digest}; nothing installed"
        )
    return blob, got


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
