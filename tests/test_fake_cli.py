"""The talosctl/flux stand-in rejects what the real CLIs reject and writes what they write."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CONTRACTS
from tests.fakes import artifacts, fakecli

# Runs real processes (the talosctl/flux stand-ins, kubectl, the domum CLI): not the fast tier.
pytestmark = pytest.mark.integration

# The stand-in runs on the committed contract subset (tests/cli_contract/), so most of this file runs
# on any clone; the example tables and the Talos schema come from ../shared and skip without it.
needs_shared = pytest.mark.skipif(not CONTRACTS.is_dir(), reason="../shared/contracts absent")
EXAMPLES = CONTRACTS / "examples"


@pytest.fixture
def full_contract(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stand-in's parser on the full ../shared contract (the example tables use every command)."""
    monkeypatch.setattr(fakecli, "CONTRACTS", CONTRACTS)
    fakecli._clis.cache_clear()
    yield
    fakecli._clis.cache_clear()


def _table(name: str) -> list[list[str]]:
    if not (EXAMPLES / name).exists():
        return []
    rows = json.loads((EXAMPLES / name).read_text())
    return [r for r in rows if os.path.basename(r[0]) in ("talosctl", "flux")]


def _prog(argv: list[str]) -> str:
    return os.path.basename(argv[0])


# ---------------------------------------------------------------- parsing, from the contract tables
@pytest.mark.parametrize("argv", _table("argv-valid.json"), ids=lambda a: " ".join(a)[:70])
@needs_shared
def test_accepts_every_valid_example(argv: list[str], full_contract: None) -> None:
    error, _ = fakecli.parse(_prog(argv), argv[1:])
    assert error is None, error


# The invalid table is judged against the newest talosctl; these two are valid in v1.13, the
# version Domum pins (`apply-config --mode reboot` and `reset --insecure` were dropped in v1.14).
VALID_IN_V113 = [
    [
        "talosctl",
        "apply-config",
        "--insecure",
        "-n",
        "10.0.0.90",
        "--file",
        "x.yaml",
        "--mode",
        "reboot",
    ],
    ["talosctl", "reset", "-n", "10.0.0.92", "--insecure"],
]


@pytest.mark.parametrize("argv", _table("argv-invalid.json"), ids=lambda a: " ".join(a)[:70])
@needs_shared
def test_rejects_every_invalid_example(argv: list[str], full_contract: None) -> None:
    error, _ = fakecli.parse(_prog(argv), argv[1:])
    if argv in VALID_IN_V113:
        assert error is None, error
    else:
        assert error, f"accepted: {argv}"


def test_version_differences_follow_v113() -> None:
    """What v1.13 has and later versions dropped is accepted, and the reverse is rejected."""
    assert fakecli.parse("talosctl", ["reset", "-n", "1", "--insecure"]) == (None, "")
    error, _ = fakecli.parse("talosctl", ["version", "-n", "1", "--cert-fingerprint", "x"])
    assert error == "unknown flag: --cert-fingerprint"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["talosctl", "foo"], 'unknown command "foo" for "talosctl"'),
        (["talosctl", "bootstrap", "--node", "1.2.3.4"], "unknown flag: --node"),
        (
            ["talosctl", "apply-config", "-n", "1", "-fx.yaml", "-x"],
            "unknown shorthand flag: 'x' in -x",
        ),
        (["talosctl", "upgrade-k8s", "-n", "1", "--to"], "flag needs an argument: --to"),
        (
            ["talosctl", "health", "--wait-timeout", "600"],
            'invalid argument "600" for "--wait-timeout" flag: time: missing unit in duration "600"',
        ),
        (["talosctl", "etcd", "snapshot", "-n", "1"], "accepts 1 arg(s), received 0"),
        (["talosctl", "gen", "config", "x"], "accepts 2 arg(s), received 1"),
        (["talosctl", "health", "extra"], 'unknown command "extra" for "talosctl health"'),
        # client flags are not accepted by offline commands
        (
            ["talosctl", "gen", "config", "c", "https://e:6443", "-n", "1"],
            "unknown shorthand flag: 'n' in -n",
        ),
        (
            ["talosctl", "validate", "--config", "x", "--mode", "metal", "--talosconfig", "t"],
            "unknown flag: --talosconfig",
        ),
        # a flag before the subcommand swallows it
        (
            ["talosctl", "--insecure", "apply-config", "-n", "1", "--file", "x"],
            "unknown flag: --insecure",
        ),
        (["talosctl", "apply-config", "-n", "1", "--file", "x", "--mode", "stage"], "not one of"),
        (
            ["flux", "reconcile", "kustomization", "x", "--with-sources"],
            "unknown flag: --with-sources",
        ),
        (["flux", "bogus"], 'unknown command "bogus" for "flux"'),
        (["flux", "get", "kustomizationz"], "is not a subcommand of 'flux get'"),
    ],
)
def test_cobra_like_messages(argv: list[str], message: str) -> None:
    error, _ = fakecli.parse(_prog(argv), argv[1:])
    assert error is not None and message in error


def _run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=30)
    if check:
        assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc


@pytest.mark.contract_exempt("feeds the stand-in invalid command lines on purpose")
def test_rejection_through_the_wrapper(fake_cli: Any, tmp_path: Path) -> None:
    proc = _run(
        ["talosctl", "--insecure", "apply-config", "-n", "127.0.0.90", "--file", "x"],
        tmp_path,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (1, "Error: unknown flag: --insecure\n")
    proc = _run(["flux", "get", "kustomizationz"], tmp_path, check=False)
    assert proc.returncode == 1 and "Available Commands:" in proc.stdout
    assert fake_cli.records[0]["exit"] == 1 and fake_cli.records[0]["error"].startswith(
        "Error: unknown flag"
    )
    assert fake_cli.calls == [
        ["talosctl", "--insecure", "apply-config", "-n", "127.0.0.90", "--file", "x"],
        ["flux", "get", "kustomizationz"],
    ]


# ---------------------------------------------------------------- behaviour
def test_fixture_puts_the_fakes_first_and_records(fake_cli: Any, tmp_path: Path) -> None:
    assert shutil.which("talosctl") == str(fake_cli.bin_dir / "talosctl")
    assert os.environ["DOMUM_BIN_DIR"] == str(fake_cli.bin_dir)
    out = _run(["talosctl", "version", "--client"], tmp_path).stdout
    assert "Tag:         v1.13.9" in out and "Server:" not in out
    assert fake_cli.calls == [["talosctl", "version", "--client"]]
    fake_cli.clear()
    assert fake_cli.calls == []


def test_talosctl_absent(fake_cli_absent: Any) -> None:
    assert shutil.which("talosctl") is None and shutil.which("flux") is None
    fake_cli_absent.restore("flux")
    assert shutil.which("flux") == str(fake_cli_absent.bin_dir / "flux")


def test_gen_secrets_bundle_and_no_overwrite(fake_cli: Any, tmp_path: Path) -> None:
    _run(["talosctl", "gen", "secrets", "-o", "secrets.yaml"], tmp_path)
    bundle = yaml.safe_load((tmp_path / "secrets.yaml").read_text())
    assert len(base64.b64decode(bundle["cluster"]["id"])) == 32
    assert set(bundle["certs"]) == {"etcd", "k8s", "k8saggregator", "k8sserviceaccount", "os"}
    assert base64.b64decode(bundle["certs"]["os"]["crt"]).startswith(b"-----BEGIN CERTIFICATE-----")
    assert set(bundle["certs"]["k8sserviceaccount"]) == {"key"}
    for token in (bundle["secrets"]["bootstraptoken"], bundle["trustdinfo"]["token"]):
        assert len(token) == 23 and token[6] == "."
    assert (tmp_path / "secrets.yaml").stat().st_mode & 0o777 == 0o600
    before = (tmp_path / "secrets.yaml").read_bytes()
    proc = _run(["talosctl", "gen", "secrets", "-o", "secrets.yaml"], tmp_path, check=False)
    assert proc.returncode == 1 and "already exists, use --force to overwrite" in proc.stderr
    assert (tmp_path / "secrets.yaml").read_bytes() == before
    _run(["talosctl", "gen", "secrets", "-o", "secrets.yaml", "--force"], tmp_path)
    assert (tmp_path / "secrets.yaml").read_bytes() != before


def test_gen_config_with_patches_then_validate(fake_cli: Any, tmp_path: Path) -> None:
    _run(["talosctl", "gen", "secrets", "-o", "secrets.yaml"], tmp_path)
    (tmp_path / "common.yaml").write_text(
        "machine:\n  install:\n    disk: /dev/mmcblk0\n  certSANs: [domum.lan]\n"
        "---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: node-90\nauto: off\n"
    )
    (tmp_path / "cp.yaml").write_text("cluster:\n  allowSchedulingOnControlPlanes: true\n")
    image = "factory.talos.dev/installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.13.9"
    _run(
        [
            "talosctl",
            "gen",
            "config",
            "domum",
            "https://127.0.0.80:6443",
            "--with-secrets",
            "secrets.yaml",
            "--talos-version",
            "v1.13",
            "--kubernetes-version",
            "v1.35.4",
            "--install-image",
            image,
            "--output-types",
            "controlplane",
            "-o",
            "out/node-90.yaml",
            "--config-patch",
            "@common.yaml",
            "--config-patch-control-plane",
            "@cp.yaml",
        ],
        tmp_path,
    )
    docs = list(yaml.safe_load_all((tmp_path / "out/node-90.yaml").read_text()))
    main, extra = docs[0], docs[1:]
    bundle = yaml.safe_load((tmp_path / "secrets.yaml").read_text())
    assert main["version"] == "v1alpha1" and main["machine"]["type"] == "controlplane"
    assert main["machine"]["install"] == {"disk": "/dev/mmcblk0", "image": image, "wipe": False}
    assert main["machine"]["certSANs"] == ["domum.lan"]
    assert main["cluster"]["clusterName"] == "domum"
    assert main["cluster"]["allowSchedulingOnControlPlanes"] is True
    assert main["cluster"]["id"] == bundle["cluster"]["id"]
    assert main["machine"]["kubelet"]["image"].endswith(":v1.35.4")
    assert extra == [
        {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": "node-90", "auto": "off"}
    ]
    assert not (tmp_path / "out/talosconfig").exists()
    out = _run(
        ["talosctl", "validate", "--config", "out/node-90.yaml", "--mode", "metal"], tmp_path
    ).stdout
    assert "valid for metal mode" in out

    # default form: all three into a directory; worker gets no CA keys, talosconfig no nodes
    _run(
        [
            "talosctl",
            "gen",
            "config",
            "domum",
            "https://127.0.0.80:6443",
            "--with-secrets",
            "secrets.yaml",
            "--output",
            "all",
        ],
        tmp_path,
    )
    worker, hostname = yaml.safe_load_all((tmp_path / "all/worker.yaml").read_text())
    assert hostname == {"apiVersion": "v1alpha1", "kind": "HostnameConfig", "auto": "stable"}
    assert worker["machine"]["type"] == "worker" and worker["machine"]["ca"]["key"] == ""
    tc = yaml.safe_load((tmp_path / "all/talosconfig").read_text())
    assert tc["context"] == "domum" and tc["contexts"]["domum"]["endpoints"] == ["127.0.0.80"]
    assert "nodes" not in tc["contexts"]["domum"]
    _run(
        ["talosctl", "validate", "--config", "all/worker.yaml", "--mode", "metal", "--strict"],
        tmp_path,
    )


def test_gen_config_refuses_overwrite_and_missing_secrets(fake_cli: Any, tmp_path: Path) -> None:
    proc = _run(
        [
            "talosctl",
            "gen",
            "config",
            "c",
            "https://127.0.0.80:6443",
            "--with-secrets",
            "nope.yaml",
        ],
        tmp_path,
        check=False,
    )
    assert proc.returncode == 1 and "failed to load secrets bundle" in proc.stderr
    _run(["talosctl", "gen", "config", "c", "https://127.0.0.80:6443"], tmp_path)
    proc = _run(
        ["talosctl", "gen", "config", "c", "https://127.0.0.80:6443"], tmp_path, check=False
    )
    assert proc.returncode == 1 and "already exists, use --force" in proc.stderr
    _run(["talosctl", "gen", "config", "c", "https://127.0.0.80:6443", "--force"], tmp_path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("machine: [unclosed\n", "failed to decode config"),
        # talosctl v1.13.9 never checks `version`; it wants a cluster section and a machine CA
        ("version: v1alpha2\nmachine: {type: worker}\n", "cluster instructions are required"),
        (
            "version: v1alpha1\nmachine: {install: {disk: /dev/sda}}\ncluster: {controlPlane: {endpoint: https://e:6443}}\n",
            "issuing CA or some accepted CAs are required",
        ),
        (
            "version: v1alpha1\nmachine: {type: master, ca: {crt: Zm9v}, install: {disk: /dev/sda}}\n"
            "cluster: {controlPlane: {endpoint: https://e:6443}}\n",
            'unknown machine type "master"',
        ),
    ],
)
def test_validate_rejects_bad_configs(
    fake_cli: Any, tmp_path: Path, content: str, reason: str
) -> None:
    (tmp_path / "c.yaml").write_text(content)
    proc = _run(
        ["talosctl", "validate", "--config", "c.yaml", "--mode", "metal"], tmp_path, check=False
    )
    assert proc.returncode == 1 and reason in proc.stderr, proc.stderr


def _talosconfig(tmp_path: Path) -> str:
    _run(
        [
            "talosctl",
            "gen",
            "config",
            "domum",
            "https://127.0.0.80:6443",
            "--output-types",
            "talosconfig",
            "-o",
            "talosconfig",
        ],
        tmp_path,
    )
    return str(tmp_path / "talosconfig")


def _client(tc: str, node: str = "127.0.0.90") -> list[str]:
    return ["--talosconfig", tc, "--nodes", node, "--endpoints", "127.0.0.90"]


def test_online_commands_need_a_talosconfig_and_nodes(fake_cli: Any, tmp_path: Path) -> None:
    proc = _run(["talosctl", "bootstrap", "-n", "127.0.0.90"], tmp_path, check=False)
    assert proc.returncode == 1 and "failed to open config file" in proc.stderr
    tc = _talosconfig(tmp_path)
    proc = _run(["talosctl", "bootstrap", "--talosconfig", tc], tmp_path, check=False)
    assert proc.returncode == 1 and "nodes are not set" in proc.stderr


def test_bootstrap_once_then_already_exists(fake_cli: Any, tmp_path: Path) -> None:
    tc = _talosconfig(tmp_path)
    _run(["talosctl", "bootstrap", *_client(tc)], tmp_path)
    assert fake_cli.state["bootstrapped"] is True
    proc = _run(["talosctl", "bootstrap", *_client(tc)], tmp_path, check=False)
    assert proc.returncode == 1
    assert "AlreadyExists desc = etcd data directory is not empty" in proc.stderr


def test_health_and_upgrade_driven_by_state(fake_cli: Any, tmp_path: Path) -> None:
    tc = _talosconfig(tmp_path)
    _run(["talosctl", "health", *_client(tc), "--wait-timeout", "5m"], tmp_path)
    fake_cli.set_state(unhealthy_after={"upgrade": ["127.0.0.92"]})
    image = "factory.talos.dev/installer/abc:v1.13.9"
    _run(
        ["talosctl", "upgrade", *_client(tc, "127.0.0.91"), "--image", image, "--preserve"],
        tmp_path,
    )
    _run(["talosctl", "health", *_client(tc, "127.0.0.91"), "--wait-timeout", "5m"], tmp_path)
    _run(["talosctl", "upgrade", *_client(tc, "127.0.0.92"), "--image", image], tmp_path)
    proc = _run(
        ["talosctl", "health", *_client(tc, "127.0.0.92"), "--wait-timeout", "5m"],
        tmp_path,
        check=False,
    )
    assert (
        proc.returncode == 1 and "127.0.0.92" in proc.stderr and "DeadlineExceeded" in proc.stderr
    )
    assert fake_cli.state["upgraded"] == {"127.0.0.91": image, "127.0.0.92": image}
    status = _run(
        ["talosctl", "get", "machinestatus", *_client(tc, "127.0.0.92"), "-o", "json"], tmp_path
    ).stdout
    assert json.loads(status)["spec"]["status"]["ready"] is False


def test_injected_failure_with_times(fake_cli: Any, tmp_path: Path) -> None:
    tc = _talosconfig(tmp_path)
    fake_cli.set_state(
        fail={
            "bootstrap": {
                "message": "rpc error: code = Unavailable desc = connection refused",
                "times": 2,
            }
        }
    )
    for _ in range(2):
        proc = _run(["talosctl", "bootstrap", *_client(tc)], tmp_path, check=False)
        assert proc.returncode == 1 and "Unavailable" in proc.stderr
    _run(["talosctl", "bootstrap", *_client(tc)], tmp_path)
    fake_cli.set_state(fail={"flux resume kustomization": "boom"})
    proc = _run(["flux", "resume", "kustomization", "--all"], tmp_path, check=False)
    assert (proc.returncode, proc.stderr.strip()) == (1, "Error: boom")


def test_kubeconfig_and_members(fake_cli: Any, tmp_path: Path) -> None:
    tc = _talosconfig(tmp_path)
    _run(
        ["talosctl", "kubeconfig", "kube/config", "--force", "--merge=false", *_client(tc)],
        tmp_path,
    )
    kc = yaml.safe_load((tmp_path / "kube/config").read_text())
    assert kc["current-context"] == "admin@domum"
    assert kc["clusters"][0]["cluster"]["server"] == "https://127.0.0.90:6443"
    proc = _run(
        ["talosctl", "kubeconfig", "kube/config", "--merge=false", *_client(tc)],
        tmp_path,
        check=False,
    )
    assert proc.returncode == 1 and "already exists" in proc.stderr
    proc = _run(
        ["talosctl", "kubeconfig", "k", "-n", "127.0.0.90,127.0.0.91", "--talosconfig", tc],
        tmp_path,
        check=False,
    )
    assert proc.returncode == 1 and "not supported with multiple nodes" in proc.stderr
    fake_cli.set_state(
        members=[
            {"hostname": "node-90", "ip": "127.0.0.90", "type": "controlplane"},
            {"hostname": "node-92", "ip": "127.0.0.92", "type": "worker"},
        ]
    )
    out = _run(["talosctl", "get", "members", *_client(tc), "-o", "json"], tmp_path).stdout
    objs = [json.loads(x) for x in out.replace("}\n{", "}\x00{").split("\x00")]
    assert [o["spec"]["hostname"] for o in objs] == ["node-90", "node-92"]


def test_etcd_snapshot_is_a_talos_snapshot(fake_cli: Any, tmp_path: Path) -> None:
    tc = _talosconfig(tmp_path)
    out = _run(["talosctl", "etcd", "snapshot", "db.snapshot", *_client(tc)], tmp_path).stdout
    data = (tmp_path / "db.snapshot").read_bytes()
    assert len(data) % 512 == 32
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]
    assert data[16:20] == (0xED0CDAED).to_bytes(4, "little")  # bbolt meta magic
    assert f'etcd snapshot saved to "db.snapshot" ({len(data)} bytes)' in out
    assert artifacts.verify_snapshot(str(tmp_path / "db.snapshot")) is None
    corrupt = bytearray(data)
    corrupt[5000] ^= 0xFF
    (tmp_path / "bad.snapshot").write_bytes(bytes(corrupt))
    assert artifacts.verify_snapshot(str(tmp_path / "bad.snapshot")) is not None
    (tmp_path / "short.snapshot").write_bytes(data[:-1])
    assert (
        artifacts.verify_snapshot(str(tmp_path / "short.snapshot")) == "sha256 checksum not found"
    )


def test_flux_suspend_get_resume(fake_cli: Any, tmp_path: Path) -> None:
    _run(["flux", "check"], tmp_path)
    _run(["flux", "suspend", "kustomization", "--all"], tmp_path)
    assert all(k["suspended"] for k in fake_cli.state["kustomizations"])
    table = _run(["flux", "get", "kustomizations", "-A"], tmp_path).stdout.splitlines()
    assert table[0].split() == ["NAMESPACE", "NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
    assert [row.split()[3] for row in table[1:]] == ["True", "True", "True"]
    proc = _run(
        ["flux", "reconcile", "kustomization", "apps", "--with-source"], tmp_path, check=False
    )
    assert proc.returncode == 1 and "suspended" in proc.stderr
    _run(["flux", "resume", "kustomization", "--all"], tmp_path)
    assert not any(k["suspended"] for k in fake_cli.state["kustomizations"])
    _run(["flux", "reconcile", "kustomization", "apps", "--with-source"], tmp_path)
    assert fake_cli.calls_of("flux")[1] == ["flux", "suspend", "kustomization", "--all"]


@pytest.mark.skipif(not shutil.which("etcdctl"), reason="etcdctl not installed")
def test_synthetic_snapshot_opens_as_bbolt(fake_cli: Any, tmp_path: Path) -> None:
    tc = _talosconfig(tmp_path)
    _run(["talosctl", "etcd", "snapshot", "db.snapshot", *_client(tc)], tmp_path)
    out = _run(["etcdctl", "snapshot", "status", "db.snapshot", "-w", "json"], tmp_path).stdout
    assert json.loads(out)["totalSize"] == (tmp_path / "db.snapshot").stat().st_size - 32


def test_snapshot_from_a_real_etcd(fake_cli: Any, tmp_path: Path, real_etcd_snapshot: Path) -> None:
    fake_cli.set_state(etcd_snapshot_source=str(real_etcd_snapshot))
    tc = _talosconfig(tmp_path)
    _run(["talosctl", "etcd", "snapshot", "db.snapshot", *_client(tc)], tmp_path)
    assert (tmp_path / "db.snapshot").read_bytes() == real_etcd_snapshot.read_bytes()
    assert artifacts.verify_snapshot(str(tmp_path / "db.snapshot")) is None
    out = _run(["etcdctl", "snapshot", "status", "db.snapshot", "-w", "json"], tmp_path).stdout
    assert json.loads(out)["totalKey"] >= 20


def test_day2_commands_record_state(fake_cli: Any, tmp_path: Path) -> None:
    tc = _talosconfig(tmp_path)
    _run(
        ["talosctl", "config", "endpoint", "127.0.0.90", "127.0.0.91", "--talosconfig", tc],
        tmp_path,
    )
    _run(["talosctl", "config", "node", "127.0.0.90", "--talosconfig", tc], tmp_path)
    ctx = yaml.safe_load(Path(tc).read_text())["contexts"]["domum"]
    assert (ctx["endpoints"], ctx["nodes"]) == (["127.0.0.90", "127.0.0.91"], ["127.0.0.90"])
    # now the talosconfig's own node list is used when -n is absent
    out = _run(["talosctl", "version", "--talosconfig", tc, "--short"], tmp_path).stdout
    assert "NODE:        127.0.0.90" in out and "Talos v1.13.9" in out

    _run(["talosctl", "gen", "config", "domum", "https://127.0.0.80:6443", "-o", "cfg"], tmp_path)
    # gen config 1.13 writes a HostnameConfig too, so a JSON Patch is refused (json6902.go)
    (tmp_path / "j.yaml").write_text(
        '[{"op": "add", "path": "/machine/install/disk", "value": "/dev/nvme0n1"}]'
    )
    refused = _run(
        ["talosctl", "machineconfig", "patch", "cfg/worker.yaml", "--patch", "@j.yaml"],
        tmp_path,
        check=False,
    )
    assert refused.returncode == 1
    assert "JSON6902 patches are not supported for multi-document" in refused.stderr
    (tmp_path / "p.yaml").write_text("machine:\n  install:\n    disk: /dev/nvme0n1\n")
    _run(
        [
            "talosctl",
            "machineconfig",
            "patch",
            "cfg/worker.yaml",
            "--patch",
            "@p.yaml",
            "-o",
            "w.yaml",
        ],
        tmp_path,
    )
    assert (
        next(yaml.safe_load_all((tmp_path / "w.yaml").read_text()))["machine"]["install"]["disk"]
        == "/dev/nvme0n1"
    )

    _run(
        ["talosctl", "apply-config", "--insecure", "-n", "127.0.0.92", "--file", "w.yaml"], tmp_path
    )
    _run(
        [
            "talosctl",
            "apply-config",
            *_client(tc, "127.0.0.91"),
            "-f",
            "w.yaml",
            "--mode",
            "no-reboot",
        ],
        tmp_path,
    )
    assert fake_cli.state["applied"]["127.0.0.92"]["insecure"] is True
    assert fake_cli.state["applied"]["127.0.0.91"]["mode"] == "no-reboot"
    proc = _run(
        ["talosctl", "apply-config", *_client(tc), "-f", "missing.yaml"], tmp_path, check=False
    )
    assert proc.returncode == 1 and "missing.yaml" in proc.stderr

    _run(["talosctl", "upgrade-k8s", *_client(tc), "--to", "1.36.0"], tmp_path)
    assert fake_cli.state["kubernetes_version"] == "1.36.0"
    _run(
        ["talosctl", "reset", *_client(tc, "127.0.0.92"), "--graceful=false", "--reboot"], tmp_path
    )
    assert fake_cli.state["reset"] == ["127.0.0.92"]
