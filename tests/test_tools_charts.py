"""`inv tools.install` fetches the tree's charts into the cache flux.validate reads: from a chart
repository (index.yaml, then the .tgz it names) and from an OCI registry (anonymous bearer
token, manifest, chart layer), both stand-ins on 127.0.0.1 written here. Without a pin, the
first fetch trusts the digest the source publishes and records it in config/charts.lock; every
later fetch must match the lock."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
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
    # A registry states each manifest's digest (distribution spec, Docker-Content-Digest);
    # a path here makes it state this one instead.
    stated: dict[str, str] = field(default_factory=dict)


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
                body, ctype = state.files[path]
                extra = {}
                if "/manifests/" in path:
                    digest = "sha256:" + hashlib.sha256(body).hexdigest()
                    extra["Docker-Content-Digest"] = state.stated.get(path, digest)
                self._send(200, body, ctype, extra)
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


MANIFEST = "/v2/charts/ocidemo/manifests/2.0.0"
TGZ = "/repo/charts/demo-1.0.0.tgz"


def _index(tgz: bytes | None, *, digest: bool = True) -> bytes:
    line = f"      digest: {_sha(tgz)}\n" if digest and tgz is not None else ""
    return (
        "apiVersion: v1\nentries:\n  demo:\n    - version: 1.0.0\n"
        f"{line}      urls: [charts/demo-1.0.0.tgz]\n"
    ).encode()


def _put_oci(server: Server, blob: bytes) -> str:
    """ocidemo 2.0.0 in the registry: its manifest naming `blob` as the chart layer."""
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
    server.files[MANIFEST] = (manifest, "application/vnd.oci.image.manifest.v1+json")
    server.files[f"/v2/charts/ocidemo/blobs/sha256:{_sha(blob)}"] = (
        blob,
        "application/octet-stream",
    )
    return _sha(manifest)


def _publish(server: Server) -> tuple[str, str]:
    """demo 1.0.0 in a chart repository, ocidemo 2.0.0 in a registry: (tgz sha, manifest sha)."""
    tgz = _chart("demo", "1.0.0")
    server.files["/repo/index.yaml"] = (_index(tgz), "text/yaml")
    server.files[TGZ] = (tgz, "application/gzip")
    return _sha(tgz), _put_oci(server, _chart("ocidemo", "2.0.0"))


def _tree(repo: Path, server: Server) -> None:
    """Neither chart is pinned in the tree (no ref.digest): both are first uses."""
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
  ref: {{tag: 2.0.0}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: ocidemo}}
spec:
  chartRef: {{kind: OCIRepository, name: ocidemo}}
"""
    )


@dataclass
class Repo:
    root: Path
    tgz_sha: str
    manifest_sha: str

    @property
    def lock(self) -> Path:
        return self.root / "config" / "charts.lock"

    def entries(self) -> dict[str, dict[str, str]]:
        return dict(yaml.safe_load(self.lock.read_text()))


@pytest.fixture
def repo(tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch) -> Repo:
    tgz_sha, manifest_sha = _publish(server)
    _tree(tmp_path / "repo", server)
    monkeypatch.setenv("DOMUM_REPO_ROOT", str(tmp_path / "repo"))
    return Repo(tmp_path / "repo", tgz_sha, manifest_sha)


def _install(capsys: pytest.CaptureFixture[str], **options: object) -> list[dict[str, object]]:
    tools_tasks.install(Context(), tool="charts", json=True, **options)
    return list(json.loads(capsys.readouterr().out))


def _refused(**options: object) -> str:
    with pytest.raises(Exit) as err:
        tools_tasks.install(Context(), tool="charts", **options)
    assert err.value.code == 1
    message = str(err.value.message)
    assert message.startswith("domum: ") and "\n" not in message  # one line
    return message.removeprefix("domum: ")


def test_first_use_fetches_both_kinds_records_the_lock_and_validate_reads_them(
    repo: Repo, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    done = _install(capsys)
    charts = [d for d in done if "chart" in d]
    assert sorted((d["chart"], d["verified_by"]) for d in charts) == [
        ("demo 1.0.0", "first-use"),
        ("ocidemo 2.0.0", "first-use"),
    ]
    assert done[-1] == {"lock": str(repo.lock), "recorded": ["demo/1.0.0", "ocidemo/2.0.0"]}
    lock = repo.entries()
    assert sorted(lock) == ["demo/1.0.0", "ocidemo/2.0.0"]
    assert lock["demo/1.0.0"]["sha256"] == repo.tgz_sha
    assert lock["demo/1.0.0"]["source"] == f"{server.url}/repo"
    assert lock["ocidemo/2.0.0"]["sha256"] == repo.manifest_sha
    assert lock["ocidemo/2.0.0"]["source"].endswith("/charts/ocidemo")
    for entry in lock.values():
        assert datetime.fromisoformat(entry["fetched_at"]).tzinfo is not None
    assert repo.lock.read_text().startswith("# ")  # says what it is to whoever opens it

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

    n, before = len(server.requests), repo.lock.read_text()
    assert _install(capsys) == []  # cached, with the digest the lock records: nothing asked
    assert len(server.requests) == n
    done = _install(capsys, force=True)  # re-fetched, verified by the lock, which stays as is
    assert sorted(d["verified_by"] for d in done) == ["lock", "lock"]
    assert repo.lock.read_text() == before


def test_a_tampered_tarball_is_refused_by_the_lock_even_with_a_matching_index(
    repo: Repo, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(capsys)
    before = repo.lock.read_text()
    evil = _chart("demo", "1.0.1")
    server.files[TGZ] = (evil, "application/gzip")
    server.files["/repo/index.yaml"] = (_index(evil), "text/yaml")  # the source agrees with it
    message = _refused(force=True)
    assert message.startswith("chart demo 1.0.0: sha256 mismatch")
    assert f"expected {repo.tgz_sha} (recorded in config/charts.lock)" in message
    assert f"got {_sha(evil)}" in message
    assert repo.lock.read_text() == before
    assert (chart_cache_dir() / "demo" / "1.0.0" / ".sha256").read_text().strip() == repo.tgz_sha


def test_a_tampered_manifest_is_refused_by_the_lock(
    repo: Repo, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(capsys)
    before = repo.lock.read_text()
    evil = _put_oci(server, _chart("ocidemo", "2.0.1"))  # a consistent registry, other bytes
    message = _refused(force=True)
    assert message.startswith("chart ocidemo 2.0.0: sha256 mismatch for the manifest")
    assert f"expected {repo.manifest_sha} (recorded in config/charts.lock), got {evil}" in message
    assert repo.lock.read_text() == before


def test_a_registry_stating_another_digest_than_its_bytes_is_refused(
    repo: Repo, server: Server
) -> None:
    server.stated[MANIFEST] = "sha256:" + "1" * 64
    message = _refused()
    assert f"says its digest is sha256:{'1' * 64}" in message and repo.manifest_sha in message
    assert not repo.lock.exists()


def test_an_index_without_digest_is_refused_on_first_use(repo: Repo, server: Server) -> None:
    server.files["/repo/index.yaml"] = (_index(None), "text/yaml")
    message = _refused()
    assert message == (
        f"chart demo 1.0.0: {server.url}/repo/index.yaml publishes no sha256 digest for it, and "
        "none is pinned or recorded; refusing to fetch it unverified (pin it in "
        "domum_tasks/tools/chart_pins.py, or set DOMUM_CHARTS)"
    )
    assert TGZ not in [p for p, _ in server.requests]  # never downloaded
    assert not (chart_cache_dir() / "demo").exists() and not repo.lock.exists()


def test_a_locked_chart_needs_no_digest_in_the_index(
    repo: Repo, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(capsys)
    server.files["/repo/index.yaml"] = (_index(None), "text/yaml")
    done = _install(capsys, force=True)
    assert {d["chart"]: d["verified_by"] for d in done}["demo 1.0.0"] == "lock"


def test_the_lock_keeps_other_entries(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    other = {"sha256": "a" * 64, "source": "https://charts.example.org", "fetched_at": "then"}
    repo.lock.parent.mkdir(parents=True)
    repo.lock.write_text(yaml.safe_dump({"zzz/0.1.0": other, "aaa/9.9.9": other}))
    _install(capsys)
    lock = repo.entries()
    assert sorted(lock) == ["aaa/9.9.9", "demo/1.0.0", "ocidemo/2.0.0", "zzz/0.1.0"]
    assert lock["zzz/0.1.0"] == other and lock["aaa/9.9.9"] == other


def test_a_lock_entry_from_another_source_is_a_first_use_again(
    repo: Repo, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = {"sha256": "b" * 64, "source": "https://old.example.org/charts", "fetched_at": "x"}
    repo.lock.parent.mkdir(parents=True)
    repo.lock.write_text(yaml.safe_dump({"demo/1.0.0": moved}))
    tools_tasks.install(Context(), tool="charts", dry_run=True)
    out = capsys.readouterr().out
    assert "has demo/1.0.0 from https://old.example.org/charts" in out
    _install(capsys)
    assert repo.entries()["demo/1.0.0"]["source"] == f"{server.url}/repo"


def test_a_pin_wins_over_the_lock(
    repo: Repo, server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = {"sha256": "c" * 64, "source": f"{server.url}/repo", "fetched_at": "x"}
    repo.lock.parent.mkdir(parents=True)
    repo.lock.write_text(yaml.safe_dump({"demo/1.0.0": wrong}))
    monkeypatch.setitem(chart_pins.CHARTS, "demo/1.0.0", repo.tgz_sha)
    done = _install(capsys)
    assert {d["chart"]: d["verified_by"] for d in done if "chart" in d}["demo 1.0.0"] == "pin"
    assert repo.entries()["demo/1.0.0"] == wrong  # the lock records first uses only

    monkeypatch.setitem(chart_pins.CHARTS, "demo/1.0.0", "f" * 64)
    message = _refused(force=True)
    assert f"expected {'f' * 64} (pinned in domum_tasks/tools/chart_pins.py)" in message
    assert f"got {repo.tgz_sha}" in message


def test_a_bad_lock_is_bad_input(repo: Repo) -> None:
    repo.lock.parent.mkdir(parents=True)
    repo.lock.write_text("demo/1.0.0: {sha256: abc, source: x}\n")
    with pytest.raises(Exit) as err:
        tools_tasks.install(Context(), tool="charts", dry_run=True)
    assert err.value.code == 2
    assert str(err.value.message) == (
        "domum: config/charts.lock: demo/1.0.0.sha256: 'abc' is not 64 lowercase hex digits"
    )


def test_dry_run_shows_what_verifies_each_chart_and_the_lock_step(
    repo: Repo, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    tools_tasks.install(Context(), tool="charts", dry_run=True, json=True)
    steps = json.loads(capsys.readouterr().out)
    assert [(s["action"], s["args"].get("name"), s["args"].get("verified_by")) for s in steps] == [
        ("tools.chart", "demo", "first-use"),
        ("tools.chart", "ocidemo", "first-use"),
        ("tools.chart-lock", None, None),
    ]
    assert steps[0]["args"]["url"] == f"{server.url}/repo" and steps[0]["args"]["sha256"] is None
    assert steps[2]["args"] == {
        "path": str(repo.lock),
        "demo/1.0.0": {"result_of": 0},
        "ocidemo/2.0.0": {"result_of": 1},
    }
    tools_tasks.install(Context(), tool="charts", dry_run=True)
    text = capsys.readouterr().out
    assert "trusted on first use" in text and "config/charts.lock" in text
    assert server.requests == [] and not repo.lock.exists()

    _install(capsys)  # recorded; with --force, both are verified by the lock, no lock step
    tools_tasks.install(Context(), tool="charts", dry_run=True, json=True, force=True)
    steps = json.loads(capsys.readouterr().out)
    assert [(s["args"]["name"], s["args"]["verified_by"], s["args"]["sha256"]) for s in steps] == [
        ("demo", "lock", repo.tgz_sha),
        ("ocidemo", "lock", repo.manifest_sha),
    ]


def test_a_chart_in_domum_charts_is_not_fetched(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "charts" / "demo" / "1.0.0"
    local.mkdir(parents=True)
    (local / "Chart.yaml").write_text("name: demo\nversion: 1.0.0\n")
    monkeypatch.setenv("DOMUM_CHARTS", str(tmp_path / "charts"))
    tools_tasks.install(Context(), tool="charts", dry_run=True, json=True)
    steps = json.loads(capsys.readouterr().out)
    assert [s["args"].get("name") for s in steps] == ["ocidemo", None]
    assert steps[1]["args"]["ocidemo/2.0.0"] == {"result_of": 0}


@pytest.mark.parity("tools.install")
def test_install_charts_parity(repo: Repo, plan_parity: Any) -> None:
    (plan,) = plan_parity(tools_tasks.install, tool="charts")
    assert [s["action"] for s in plan] == ["tools.chart", "tools.chart", "tools.chart-lock"]
    assert sorted(repo.entries()) == ["demo/1.0.0", "ocidemo/2.0.0"]


def test_the_real_tree_plans_a_verified_fetch_of_every_chart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Not a stub: the committed tree's charts are all planned (nothing is fetched here), each
    verified by a pin, config/charts.lock or its source's published digest on first use."""
    tools_tasks.install(Context(), tool="charts", dry_run=True, json=True)
    steps = json.loads(capsys.readouterr().out)
    fetch = {
        (s["args"]["name"], s["args"]["version"]): s["args"]
        for s in steps
        if s["action"] == "tools.chart"
    }
    assert fetch[("traefik", "41.3.0")]["url"] == "oci://ghcr.io/traefik/helm/traefik"
    assert fetch[("pihole", "2.38.0")]["url"] == "https://mojo2600.github.io/pihole-kubernetes"
    assert fetch[("pihole", "2.38.0")]["kind"] == "helm"
    for args in fetch.values():
        assert args["verified_by"] in ("pin", "lock", "first-use")
        assert (args["sha256"] is None) == (args["verified_by"] == "first-use")
    first = sorted(f"{n}/{v}" for (n, v), a in fetch.items() if a["verified_by"] == "first-use")
    if first:
        assert steps[-1]["action"] == "tools.chart-lock"
        assert sorted(k for k in steps[-1]["args"] if k != "path") == first
