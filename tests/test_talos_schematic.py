"""Image Factory schematics: canonical form against the factory's own ids, URLs, id resolution."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Context

from domum_tasks.errors import DomumError
from domum_tasks.inventory.loader import load
from domum_tasks.talos import schematic as S
from domum_tasks.talos.ops import facts
from tests.conftest import LOOPBACK_INVENTORY

INV = load(LOOPBACK_INVENTORY)
RPI_VANILLA = "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9"  # siderolabs docs
EMPTY = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"  # talosctl default
QEMU = (
    "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"  # factory UI, qemu-ga only
)


@pytest.mark.parametrize(
    ("schematic", "expected"),
    [
        (
            S.Schematic(overlay_image=S.RPI_OVERLAY_IMAGE, overlay_name=S.RPI_OVERLAY_NAME),
            RPI_VANILLA,
        ),
        (S.Schematic(), EMPTY),
        (S.Schematic(extensions=(S.QEMU_GUEST_AGENT,)), QEMU),
    ],
)
def test_local_id_matches_factory_vectors(schematic: S.Schematic, expected: str) -> None:
    assert schematic.local_id == expected


def test_per_platform_schematics() -> None:
    s90 = S.schematic_for(INV, INV.node(90))
    # the vanilla Pi 4 schematic: no overlay options (no firmware watchdog: boot loops)
    assert s90.canonical_yaml() == (
        "overlay:\n    image: siderolabs/sbc-raspberrypi\n    name: rpi_generic\n"
        "customization: {}\n"
    )
    assert s90.local_id == RPI_VANILLA and not s90.overlay_options
    s92 = S.schematic_for(INV, INV.node(92))  # the Pi 5 worker: its own board, Longhorn tools
    assert s92.overlay_name == "rpi_5" and s92.extensions == S.LONGHORN_EXTENSIONS
    assert not s92.overlay_options
    assert S.schematic_for(INV, INV.node(96)).local_id == QEMU
    x = S.schematic_for(INV, INV.node(97))
    assert (
        x.extensions
        == (
            "siderolabs/i915",
            "siderolabs/intel-ucode",
            "siderolabs/iscsi-tools",
            "siderolabs/util-linux-tools",
        )
        and not x.overlay_image
    )
    assert yaml.safe_load(x.canonical_yaml()) == x.to_dict()


def test_cluster_and_node_extensions_merge_sorted_and_deduplicated() -> None:
    data = yaml.safe_load(LOOPBACK_INVENTORY.read_text())
    data["cluster"]["extensions"] = ["siderolabs/tailscale", "siderolabs/i915"]
    data["nodes"][96]["schematic"]["extra_kernel_args"] = [
        "net.ifnames=0",
        "-lockdown",
        "net.ifnames=0",
    ]
    from domum_tasks.inventory.model import Inventory

    inv = Inventory.model_validate(data)
    s96 = S.schematic_for(inv, inv.node(96))
    assert s96.extensions == (
        "siderolabs/i915",
        "siderolabs/qemu-guest-agent",
        "siderolabs/tailscale",
    )
    assert s96.extra_kernel_args == ("net.ifnames=0", "-lockdown")
    text = s96.canonical_yaml()
    assert text.startswith("customization:\n    extraKernelArgs:\n        - net.ifnames=0\n")
    # go-yaml: a leading "-" is an indicator only before a space (emitter.go analyzeScalar)
    assert "        - -lockdown\n" in text and yaml.safe_load(text) == s96.to_dict()
    s90 = S.schematic_for(inv, inv.node(90))
    assert s90.overlay_name == "rpi_generic" and s90.extensions == (
        "siderolabs/i915",
        "siderolabs/tailscale",
    )
    assert text.index("extraKernelArgs") < text.index("systemExtensions")


def test_urls_and_installer() -> None:
    urls = S.node_image_urls(INV, INV.node(92), RPI_VANILLA)
    base = "http://127.0.0.1:9"  # the loopback inventory's factory: nothing listens there
    assert urls == {
        "raw.xz": f"{base}/image/{RPI_VANILLA}/v1.13.9/metal-arm64.raw.xz",
        "raw.zst": f"{base}/image/{RPI_VANILLA}/v1.13.9/metal-arm64.raw.zst",
    }
    assert S.node_image_urls(INV, INV.node(96), QEMU) == {
        "iso": f"{base}/image/{QEMU}/v1.13.9/metal-amd64.iso"
    }
    assert S.image_url(
        "https://factory.talos.dev", QEMU, "v1.13.9", arch="amd64", suffix="iso"
    ) == (f"https://factory.talos.dev/image/{QEMU}/v1.13.9/metal-amd64.iso")
    assert (
        S.image_url("https://f/", QEMU, "v1.13.9", arch="amd64", suffix="iso", platform="nocloud")
        == f"https://f/image/{QEMU}/v1.13.9/nocloud-amd64.iso"
    )
    assert S.node_installer_image(INV, INV.node(96), QEMU) == (
        f"factory.talos.dev/metal-installer/{QEMU}:v1.13.9"
    )
    with pytest.raises(ValueError, match="64 hex"):
        S.installer_image("r", "abc", "v1.13.9")


# --- id resolution ---------------------------------------------------------------------------


def test_resolution_order() -> None:
    """Without the factory: the inventory's id, else the lock's record, else computed."""
    sch = S.schematic_for(INV, INV.node(97))
    lock = {facts.schematic_key(sch): {"id": "c" * 64, "schematic": sch.canonical_yaml()}}
    r = facts.resolve_schematic_id(sch, inventory_id="d" * 64, lock=lock)
    assert (r.id, r.source) == ("d" * 64, "inventory") and "stale" in r.note
    r = facts.resolve_schematic_id(sch, inventory_id=None, lock=lock)
    assert (r.id, r.source) == ("c" * 64, "lock")
    r = facts.resolve_schematic_id(sch, inventory_id=None, lock={})
    assert (r.id, r.source) == (sch.local_id, "computed")


@pytest.fixture
def factory() -> Iterator[tuple[str, list[bytes]]]:
    """A minimal Image Factory on loopback: POST /schematics answers sha256 of the body."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            bodies.append(body)
            ok = self.path == "/schematics" and b"bogus" not in body
            payload = {"id": hashlib.sha256(body).hexdigest()} if ok else {"error": "bad"}
            data = json.dumps(payload).encode()
            self.send_response(201 if ok else 400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()
    server.server_close()


def test_register_against_loopback_factory(factory: tuple[str, list[bytes]]) -> None:
    from domum_tasks.talos.ops import schematics

    url, bodies = factory
    sch = S.schematic_for(INV, INV.node(90))
    body = sch.canonical_yaml()
    done = schematics.register({RPI_VANILLA: body}, {"factory": url, "ids": {RPI_VANILLA: [90]}})
    assert done.confirmed == {RPI_VANILLA: body} and not done.unconfirmed
    assert bodies == [body.encode()]
    # the factory refuses the schematic (unknown extension): the installer would not exist
    bogus = S.Schematic(extensions=("bogus/ext",))
    with pytest.raises(DomumError, match="HTTP 400"):
        schematics.register(
            {bogus.local_id: bogus.canonical_yaml()},
            {"factory": url, "ids": {bogus.local_id: [92]}},
        )
    # the factory answers another id than the one the plan's installer images use
    with pytest.raises(DomumError, match="Domum computed " + "a" * 64):
        schematics.register({"a" * 64: body}, {"factory": url, "ids": {"a" * 64: [90]}})
    # unreachable: an outcome, not an error; one timeout is enough for every schematic
    down = schematics.register(
        {RPI_VANILLA: body, QEMU: "x"},
        {"factory": "http://127.0.0.1:9", "ids": {RPI_VANILLA: [90], QEMU: [96]}},
    )
    assert not down.confirmed and set(down.unconfirmed) == {RPI_VANILLA, QEMU}
    assert "unreachable" in down.unconfirmed[QEMU] and len(bodies) == 3


def _inventory_with_factory(tmp_path: Path, url: str) -> Path:
    data = yaml.safe_load(LOOPBACK_INVENTORY.read_text())
    data["cluster"]["image_factory"] = url
    path = tmp_path / "domum.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_schematic_task_online_writes_lock_then_offline_reads_it(
    factory: tuple[str, list[bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from domum_tasks.talos.ops.tasks import schematic

    url, bodies = factory
    monkeypatch.setenv("DOMUM_INVENTORY", str(_inventory_with_factory(tmp_path, url)))
    lock = tmp_path / "schematics.lock"  # next to the inventory
    schematic(Context(), dry_run=True)  # shows the POST and the lock write, does neither
    assert "talos.schematic-register" in capsys.readouterr().out
    assert bodies == [] and not lock.exists()
    schematic(Context(), json=True)
    rows = json.loads(capsys.readouterr().out)
    assert [r["node_id"] for r in rows] == [90, 91, 92, 96, 97, 98]
    assert {r["source"] for r in rows} == {"factory"}
    assert len(bodies) == 4  # one POST per distinct schematic (Pi 4, Pi 5, VM, mini PC)
    by_node = {r["node_id"]: r for r in rows}
    assert by_node[96]["installer"] == f"factory.talos.dev/metal-installer/{QEMU}:v1.13.9"
    assert set(by_node[90]["images"]) == {"raw.xz", "raw.zst"}
    first = lock.read_text()
    assert len(json.loads(first)) == 4
    schematic(Context(), json=True)
    capsys.readouterr()
    assert lock.read_text() == first  # deterministic: no churn
    schematic(Context(), node="96", json=True, offline=True)
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["id"], row["source"]) == (QEMU, "lock") and len(bodies) == 8


def test_schematic_task_refuses_raspios_node() -> None:
    from invoke import Exit

    from domum_tasks.talos.ops.tasks import schematic

    with pytest.raises(Exit) as exc:
        schematic(Context(), node="93", offline=True)
    assert exc.value.code == 2 and "runs raspios" in str(exc.value.message)


def test_schematic_text_shows_ids_and_urls_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from domum_tasks.talos.ops.tasks import schematic

    monkeypatch.setenv("DOMUM_INVENTORY", str(_inventory_with_factory(tmp_path, "https://f.test")))
    monkeypatch.setenv("COLUMNS", "60")  # a narrow terminal cuts nothing either
    schematic(Context(), node="96", offline=True, json=True)
    (row,) = json.loads(capsys.readouterr().out)
    schematic(Context(), node="96", offline=True, verbose=True)
    out = capsys.readouterr().out
    assert "…" not in out
    assert f"  schematic  {row['id']}  ({row['source']})" in out
    assert f"  installer  {row['installer']}" in out
    for url in row["images"].values():
        assert url in out
    assert "siderolabs/qemu-guest-agent" in out  # the YAML, with --verbose


def test_factory_unreachable_keeps_computed_ids_and_writes_no_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from domum_tasks.talos.ops.tasks import schematic

    monkeypatch.setenv(
        "DOMUM_INVENTORY", str(_inventory_with_factory(tmp_path, "http://127.0.0.1:9"))
    )
    schematic(Context(), node="96", json=True)
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["id"], row["source"]) == (QEMU, "computed") and "unreachable" in row["note"]
    assert not (tmp_path / "schematics.lock").exists()


@pytest.mark.parity("talos.schematic")
def test_schematic_parity(
    plan_parity: Any,
    factory: tuple[str, list[bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from domum_tasks.talos.ops.tasks import schematic

    url, bodies = factory
    monkeypatch.setenv("DOMUM_INVENTORY", str(_inventory_with_factory(tmp_path, url)))
    (plan,) = plan_parity(schematic)
    assert [s["args"].get("registered") for s in plan] == [None, {"result_of": 0}]
    assert len(plan[0]["args"]["ids"]) == 4 and len(bodies) == 4  # only the real run posted
    assert len(json.loads((tmp_path / "schematics.lock").read_text())) == 4
    (offline,) = plan_parity(schematic, offline=True)
    assert offline == [] and len(bodies) == 4
