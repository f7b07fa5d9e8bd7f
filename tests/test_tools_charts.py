"""`inv tools.install` fetches the tree's pinned charts into the cache flux.validate reads: from a
chart repository (index.yaml, then the .tgz it names) and from an OCI registry (anonymous
bearer token, manifest, chart layer), both stand-ins on 127.0.0.1 written here."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from invoke import Context, Exit

from domum_tasks.flux.validate.chartstore import ChartStore
from domum_tasks.flux.validate.valueschema import compile_schema, schema_errors
from domum_tasks.tools import chart_pins
from domum_tasks.tools import tasks as tools_tasks
from domum_tasks.tools.charts import chart_cache_dir

LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
TOKEN = "anon-token-1"


def _tgz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _chart(name: str, version: str) -> bytes:
    """A packaged chart as `helm package` lays it out: one top directory, dependencies both
    unpacked (charts/local/) and packaged (charts/sub-0.1.0.tgz), templates that are not kept."""
    sub = _tgz({"sub/Chart.yaml": b"name: sub\nversion: 0.1.0\n", "sub/values.yaml": b"x: 1\n"})
    schema = {
        "$id": f"https://charts.example.org/{name}/values.schema.json",
        "type": "object",
        "properties": {"port": {"$ref": "schemas/defs.json#/port"}},
    }
    return _tgz(
        {
            f"{name}/Chart.yaml": f"apiVersion: v2\nname: {name}\nversion: {version}\n".encode(),
            f"{name}/values.yaml": b"port: 80\n",
            f"{name}/values.schema.json": json.dumps(schema).encode(),
            f"{name}/schemas/defs.json": b'{"port": {"type": "integer"}}',
            f"{name}/templates/deployment.yaml": b"kind: Deployment\n",
            f"{name}/charts/local/Chart.yaml": b"name: local\nversion: 0.0.1\n",
            f"{name}/charts/local/values.yaml": b"y: 2\n",
            f"{name}/charts/sub-0.1.0.tgz": sub,
        }
    )


@dataclass
class Server:
    url: str
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Authorization)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("Authorization", "")
            state.requests.append((self.path, auth))
            path = self.path.split("?", 1)[0]
            if path == "/token":
                self._send(200, json.dumps({"token": TOKEN}).encode(), "application/json")
            elif path.startswith("/v2/") and auth != f"Bearer {TOKEN}":
                name = path.split("/")[2:-2]
                realm = f'Bearer realm="{state.url}/token",service="stand-in",scope="repository:{"/".join(name)}:pull"'
                self._send(401, b"{}", "application/json", {"WWW-Authenticate": realm})
            elif path in state.files:
                self._send(200, *state.files[path])
            else:
                self._send(404, b"not found", "text/plain")

        def _send(
            self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
        ) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _publish(server: Server) -> tuple[str, str]:
    """demo 1.0.0 in a chart repository, ocidemo 2.0.0 in a registry: (tgz sha, manifest sha)."""
    tgz = _chart("demo", "1.0.0")
    index = f"apiVersion: v1\nentries:\n  demo:\n    - version: 1.0.0\n      digest: {_sha(tgz)}\n      urls: [charts/demo-1.0.0.tgz]\n"
    server.files["/repo/index.yaml"] = (index.encode(), "text/yaml")
    server.files["/repo/charts/demo-1.0.0.tgz"] = (tgz, "application/gzip")
    blob = _chart("ocidemo", "2.0.0")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "config": {
                "mediaType": "application/vnd.cncf.helm.config.v1+json",
                "digest": "sha256:" + "0" * 64,
            },
            "layers": [{"mediaType": LAYER, "digest": f"sha256:{_sha(blob)}", "size": len(blob)}],
        }
    ).encode()
    server.files["/v2/charts/ocidemo/manifests/2.0.0"] = (
        manifest,
        "application/vnd.oci.image.manifest.v1+json",
    )
    server.files[f"/v2/charts/ocidemo/blobs/sha256:{_sha(blob)}"] = (
        blob,
        "application/octet-stream",
    )
    return _sha(tgz), _sha(manifest)


def _tree(repo: Path, server: Server, manifest_sha: str) -> None:
    host = server.url.removeprefix("http://")
    (repo / "cluster").mkdir(parents=True)
    (repo / "cluster" / "apps.yaml").write_text(
        f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {{name: demo-repo}}
spec: {{url: "{server.url}/repo"}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: demo}}
spec:
  chart:
    spec: {{chart: demo, version: 1.0.0, sourceRef: {{kind: HelmRepository, name: demo-repo}}}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {{name: ocidemo}}
spec:
  url: oci://{host}/charts/ocidemo
  ref: {{tag: 2.0.0, digest: "sha256:{manifest_sha}"}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: ocidemo}}
spec:
  chartRef: {{kind: OCIRepository, name: ocidemo}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: unpinned}}
spec:
  chart:
    spec: {{chart: other, version: 3.0.0, sourceRef: {{kind: HelmRepository, name: demo-repo}}}}
"""
    )


@pytest.fixture
def repo(tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    tgz_sha, manifest_sha = _publish(server)
    _tree(tmp_path / "repo", server, manifest_sha)
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(tmp_path / "repo"))
    monkeypatch.setitem(chart_pins.CHARTS, "demo/1.0.0", tgz_sha)
    return tmp_path / "repo", tgz_sha


def test_install_fetches_both_kinds_and_validate_reads_them(
    repo: tuple[Path, str], server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    tools_tasks.install(Context(), tool="charts", json=True)
    done = json.loads(capsys.readouterr().out)
    assert sorted(d["chart"] for d in done) == ["demo 1.0.0", "ocidemo 2.0.0"]
    demo = chart_cache_dir() / "demo" / "1.0.0"
    kept = sorted(p.relative_to(demo).as_posix() for p in demo.rglob("*") if p.is_file())
    assert kept == [
        ".sha256",
        "Chart.yaml",
        "charts/local/Chart.yaml",
        "charts/local/values.yaml",
        "charts/sub/Chart.yaml",
        "charts/sub/values.yaml",
        "schemas/defs.json",
        "values.schema.json",
        "values.yaml",
    ]
    # The registry was asked anonymously, then with the token its challenge pointed at.
    oci = [(p, a) for p, a in server.requests if p.startswith(("/v2/", "/token"))]
    assert oci[0] == ("/v2/charts/ocidemo/manifests/2.0.0", "")
    assert oci[1][0].startswith("/token?") and "repository%3Acharts%2Focidemo%3Apull" in oci[1][0]
    assert oci[2:] and all(a == f"Bearer {TOKEN}" for _, a in oci[2:])
    assert any("/blobs/sha256:" in p for p, _ in oci[2:])

    store = ChartStore([chart_cache_dir()])
    chart = store.get("demo", "1.0.0")
    assert chart is not None and [d.key for d in chart.deps] == ["local", "sub"]
    errors = list(schema_errors(compile_schema(chart), {"port": "eighty"}))
    assert errors == [("port", "'eighty' is not of type 'integer'")]
    assert store.get("ocidemo", "2.0.0") is not None

    n = len(server.requests)  # a second run: each chart is in the cache with its pin
    tools_tasks.install(Context(), tool="charts", json=True)
    assert json.loads(capsys.readouterr().out) == [] and len(server.requests) == n


def test_tampered_tarball_is_rejected(repo: tuple[Path, str], server: Server) -> None:
    path = "/repo/charts/demo-1.0.0.tgz"
    server.files[path] = (_chart("demo", "1.0.1"), "application/gzip")
    with pytest.raises(Exit) as err:
        tools_tasks.install(Context(), tool="charts")
    assert err.value.code == 1 and "sha256 mismatch" in str(err.value.message)
    assert "chart_pins.py" in str(err.value.message)
    assert not (chart_cache_dir() / "demo").exists()


def test_dry_run_lists_pinned_charts_and_notes_unpinned(
    repo: tuple[Path, str], server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    tools_tasks.install(Context(), tool="charts", dry_run=True, json=True)
    steps = json.loads(capsys.readouterr().out)
    assert [(s["action"], s["args"]["name"], s["args"]["kind"]) for s in steps] == [
        ("tools.chart", "demo", "helm"),
        ("tools.chart", "ocidemo", "oci"),
    ]
    assert steps[0]["args"]["sha256"] == repo[1]
    assert server.requests == []
