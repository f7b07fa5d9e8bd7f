"""pi.flash end to end onto regular files: real HTTP (loopback, Range, cut connections), real
xz/zstd archives, the lock file, cloud-init files in a real FAT partition read back with mtools."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from domum_tasks.errors import DomumError, VerifyError
from domum_tasks.pi.flash import download as flash_download
from domum_tasks.pi.flash import session as flash_session
from domum_tasks.pi.flash.image import ImageSpec
from domum_tasks.taskutil import execute
from tests import pi_flash_support as support
from tests.pi_flash_support import (
    PUBKEY,
    Served,
    compress,
    mtype,
    rpios_like_image,
    run_inv,
    talos_like_raw,
    write_inventory,
)

flash_env = support.flash_env  # fixture
http_server = support.http_server  # fixture

pytestmark = pytest.mark.integration

# node 92 (Pi 5 worker): overlay rpi_5 (no options) + the Longhorn extensions. The id is the
# sha256 of the factory's canonical YAML (go-yaml layout of the image-factory vectors).
NODE92_SCHEMATIC_YAML = (
    "overlay:\n    image: siderolabs/sbc-raspberrypi\n    name: rpi_5\ncustomization:\n"
    "    systemExtensions:\n        officialExtensions:\n"
    "            - siderolabs/iscsi-tools\n            - siderolabs/util-linux-tools\n"
)
NODE92_SCHEMATIC_ID = hashlib.sha256(NODE92_SCHEMATIC_YAML.encode()).hexdigest()


def _flash(*, dry_run: bool = False, json_out: bool = False, yes: bool = True, **kw: Any) -> None:
    """Plan and run as the task does, with DomumError raised (not turned into an exit)."""
    args: dict[str, Any] = dict(image="", force=False)
    args.update(kw)
    execute(flash_session.plan(**args), dry_run=dry_run, json_out=json_out, yes=yes)


@pytest.fixture
def talos_image(tmp_path: Path) -> tuple[bytes, Path]:
    raw = tmp_path / "metal-arm64.raw"
    data = talos_like_raw(6)
    raw.write_bytes(data)
    return data, compress(raw, "zst")


def _factory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, srv: Served) -> str:
    def edit(d: dict[str, Any]) -> None:
        d["cluster"]["image_factory"] = srv.base

    write_inventory(tmp_path, monkeypatch, edit)
    return f"/image/{NODE92_SCHEMATIC_ID}/v1.13.9/metal-arm64.raw.zst"


def test_talos_from_image_factory_to_file_records_lock_and_reuses_cache(
    flash_env: Path,
    http_server: Served,
    talos_image: tuple[bytes, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw, zst = talos_image
    path = _factory(monkeypatch, flash_env, http_server)
    http_server.files[path] = zst.read_bytes()
    out = flash_env / "sd.img"
    _flash(node=92, device=str(out))
    assert out.read_bytes() == raw
    text = capsys.readouterr().out
    assert "read back and verified" in text and hashlib.sha256(raw).hexdigest() in text
    assert "next: inv talos.apply --node 92 --insecure" in text
    lock = json.loads((flash_env / "config" / "images.lock").read_text())["images"]
    assert lock[http_server.base + path]["sha256"] == hashlib.sha256(zst.read_bytes()).hexdigest()
    # the schematic was registered (POST) before the image was fetched, and recorded
    assert http_server.log[:2] == [("/schematics", "POST"), (path, "")]
    assert NODE92_SCHEMATIC_ID in (flash_env / "schematics.lock").read_text()  # by the inventory
    # Second run: registered again (idempotent), the image from the cache (no new GET), hash
    # checked against the lock.
    gets = [e for e in http_server.log if e[1] != "POST"]
    out.unlink()
    _flash(node=92, device=str(out))
    assert [e for e in http_server.log if e[1] != "POST"] == gets and out.read_bytes() == raw
    assert http_server.log[-1] == ("/schematics", "POST")


def test_lock_mismatch_deletes_download_and_writes_nothing(
    flash_env: Path,
    http_server: Served,
    talos_image: tuple[bytes, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _raw, zst = talos_image
    path = _factory(monkeypatch, flash_env, http_server)
    url = http_server.base + path
    flash_download.record_lock(url, "0" * 64, 1)
    http_server.files[path] = zst.read_bytes()
    out = flash_env / "sd.img"
    with pytest.raises(VerifyError, match="does not match"):
        _flash(node=92, device=str(out))
    assert not out.exists()
    assert not list(flash_download.cache_dir().glob("*metal-arm64*"))
    assert "verified" not in capsys.readouterr().out


def test_interrupted_download_resumes_with_range(
    flash_env: Path, http_server: Served, talos_image: tuple[bytes, Path]
) -> None:
    _raw, zst = talos_image
    data = zst.read_bytes()
    http_server.files["/img.zst"] = data
    http_server.cut_after["/img.zst"] = [len(data) // 3]
    spec = ImageSpec(
        source=http_server.base + "/img.zst", origin="--image", trust_on_first_use=True
    )
    got = flash_download.fetch(spec, show_progress=False)
    assert got.read_bytes() == data
    first, second = (r for _p, r in http_server.log)
    assert first == "" and second.startswith("bytes=")
    resumed_at = int(second[6:-1])
    assert 0 < resumed_at <= len(data) // 3  # at most one 64 KiB read lost with the connection
    assert not list(got.parent.glob("*.part"))


def test_download_cut_every_time_keeps_part_and_resumes_next_run(
    flash_env: Path, http_server: Served, talos_image: tuple[bytes, Path]
) -> None:
    _raw, zst = talos_image
    data = zst.read_bytes()
    http_server.files["/img.zst"] = data
    http_server.cut_after["/img.zst"] = [100_000, 100_000, 100_000]
    spec = ImageSpec(
        source=http_server.base + "/img.zst", origin="--image", trust_on_first_use=True
    )
    with pytest.raises(DomumError, match="run again to resume"):
        flash_download.fetch(spec, show_progress=False)
    part = next(flash_download.cache_dir().glob("*.part"))
    kept = part.stat().st_size
    assert 0 < kept <= 300_000
    assert flash_download.fetch(spec, show_progress=False).read_bytes() == data
    assert http_server.log[-1][1] == f"bytes={kept}-"


def test_corrupt_archive_fails_and_leaves_no_file(flash_env: Path, tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    raw.write_bytes(talos_like_raw(4))
    xz = compress(raw, "xz")
    blob = bytearray(xz.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # inside a compressed block
    bad = tmp_path / "bad.img"  # extension says raw; magic says xz
    bad.write_bytes(bytes(blob))
    out = tmp_path / "out.img"
    proc = run_inv("pi.flash", "--node", "92", "--image", str(bad), "--device", str(out), "--yes")
    assert proc.returncode == 1, proc.stderr
    assert "corrupt xz archive" in proc.stderr and "Traceback" not in proc.stderr
    assert "verified" not in proc.stdout and not out.exists()


def _rpios(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, srv: Served, sha: str | None
) -> tuple[bytes, int]:
    img = tmp_path / "2025-10-01-raspios-trixie-arm64-lite.img"
    offset = rpios_like_image(img)
    raw = img.read_bytes()
    xz = compress(img, "xz")
    srv.files["/raspios/" + xz.name] = xz.read_bytes()
    good = hashlib.sha256(xz.read_bytes()).hexdigest()

    def edit(d: dict[str, Any]) -> None:
        d["ssh"]["authorized_keys"] = [PUBKEY]
        d["nodes"][93]["image"] = {"url": f"{srv.base}/raspios/{xz.name}", "sha256": sha or good}

    write_inventory(tmp_path, monkeypatch, edit)
    return raw, offset


def test_raspios_to_file_writes_cloud_init_into_fat(
    flash_env: Path, http_server: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, offset = _rpios(flash_env, monkeypatch, http_server, None)
    out = flash_env / "sd.img"
    proc = run_inv("pi.flash", "--node", "93", "--device", str(out), "--yes", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["verified"] is True and report["sha256"] == hashlib.sha256(raw).hexdigest()
    assert report["customized"] == ["meta-data", "network-config", "ssh", "user-data"]
    user_data = mtype(str(out), offset, "user-data")
    assert (
        user_data.startswith("#cloud-config") and PUBKEY in user_data and "domum-dns" in user_data
    )
    assert "local-hostname: domum-dns" in mtype(str(out), offset, "meta-data")
    net = yaml.safe_load(mtype(str(out), offset, "network-config"))["network"]
    assert net["ethernets"]["eth0"] == {  # the inventory's address, not DHCP
        "dhcp4": False,
        "addresses": ["127.0.0.93/24"],
        "routes": [{"to": "default", "via": "127.0.0.1"}],
        "nameservers": {"addresses": ["127.0.0.1", "1.1.1.1"]},
        "optional": True,
    }
    assert "wifis" not in net
    assert mtype(str(out), offset, "ssh") == ""
    cmdline = mtype(str(out), offset, "cmdline.txt")
    assert "rootwait ds=nocloud;i=domum-domum-dns-" in cmdline and cmdline.count("\n") == 1
    # The root partition is byte-exact.
    assert out.read_bytes()[offset + 64 * 2**20 :] == raw[offset + 64 * 2**20 :]


def test_raspios_wifi_timezone_and_dhcp_from_the_inventory(
    flash_env: Path, http_server: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, offset = _rpios(flash_env, monkeypatch, http_server, None)
    path = Path(os.environ["DOMUM_INVENTORY"])
    data = yaml.safe_load(path.read_text())
    data["raspios"] = {
        "timezone": "Europe/Berlin",
        "locale": "de_DE.UTF-8",
        "keyboard": "de",
        "wifi": {"ssid": "domum-iot", "country": "DE", "hidden": True},
    }
    data["nodes"][93]["raspios"] = {"dhcp": True, "timezone": "Europe/Vienna"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    psk = "correct horse battery"
    monkeypatch.setenv("DOMUM_RASPIOS_WIFI_PSK", psk)
    out = flash_env / "sd.img"
    dry = run_inv("pi.flash", "--node", "93", "--device", str(out), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    customize = json.loads(dry.stdout)[-1]["args"]
    assert customize["wifi"] == "domum-iot (DE, PSK from secrets)" and customize["eth0"] == "dhcp"
    assert psk not in dry.stdout + dry.stderr
    proc = run_inv("pi.flash", "--node", "93", "--device", str(out), "--yes")
    assert proc.returncode == 0, proc.stderr
    assert psk not in proc.stdout + proc.stderr
    net = yaml.safe_load(mtype(str(out), offset, "network-config"))["network"]
    assert net["ethernets"]["eth0"] == {"dhcp4": True, "optional": True}
    assert net["wifis"]["wlan0"] == {
        "dhcp4": True,
        "regulatory-domain": "DE",
        "optional": True,
        "access-points": {"domum-iot": {"password": psk, "hidden": True}},
    }
    ud = yaml.safe_load(mtype(str(out), offset, "user-data"))
    assert (ud["timezone"], ud["locale"], ud["keyboard"]) == (
        "Europe/Vienna",
        "de_DE.UTF-8",
        {"model": "pc105", "layout": "de"},
    )


def test_wrong_sha256_fails_deletes_download_and_writes_nothing(
    flash_env: Path, http_server: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rpios(flash_env, monkeypatch, http_server, "ab" * 32)
    out = flash_env / "sd.img"
    proc = run_inv("pi.flash", "--node", "93", "--device", str(out), "--yes")
    assert proc.returncode == 1
    assert "does not match" in proc.stderr and "inventory image.sha256" in proc.stderr
    assert not out.exists() and "wrote" not in proc.stdout
    assert not [p for p in flash_download.cache_dir().glob("*") if p.is_file()]


def test_dry_run_json_is_a_plan_and_touches_nothing(flash_env: Path) -> None:
    out = flash_env / "sd.img"
    proc = run_inv("pi.flash", "--node", "92", "--device", str(out), "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    steps = json.loads(proc.stdout)
    assert [s["action"] for s in steps] == [
        "talos.schematic-register",  # the factory serves image/<id> only once registered
        "talos.schematic-lock",
        "download",
        "write-image",
        "verify",
    ]
    assert list(steps[0]["args"]["ids"]) == [NODE92_SCHEMATIC_ID]
    assert steps[2]["args"]["url"].endswith(
        f"/image/{NODE92_SCHEMATIC_ID}/v1.13.9/metal-arm64.raw.zst"
    )
    assert not out.exists() and not flash_download.cache_dir().exists()


@pytest.mark.parametrize(
    "image", ["http://example.com/pi.img.xz", "ftp://127.0.0.1/pi.img.xz", "file:///tmp/x.img"]
)
def test_dry_run_refuses_a_url_the_downloader_would_refuse(flash_env: Path, image: str) -> None:
    out = flash_env / "sd.img"
    proc = run_inv(
        "pi.flash", "--node", "92", "--device", str(out), "--image", image, "--dry-run", "--json"
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith("domum: --image: ") and image in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_a_text_file_is_refused_as_image_unless_forced(flash_env: Path) -> None:
    text = flash_env / "cmdline.txt"
    text.write_text(
        "console=serial0,115200 console=tty1 root=PARTUUID=4e6a rootfstype=ext4 rootwait\n"
    )
    out = flash_env / "sd.img"
    proc = run_inv("pi.flash", "--node", "92", "--image", str(text), "--device", str(out), "--yes")
    assert proc.returncode == 4, proc.stderr
    assert "not a disk image: found text ('console=serial0" in proc.stderr
    assert "pass --force" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
    forced = run_inv(
        "pi.flash", "--node", "92", "--image", str(text), "--device", str(out), "--yes", "--force"
    )
    assert forced.returncode == 0, forced.stderr
    assert out.read_bytes() == text.read_bytes()


@pytest.mark.parametrize("dry_run", [False, True])
def test_missing_image_or_device_is_bad_input(flash_env: Path, dry_run: bool) -> None:
    """Typos are exit 2 (bad input), in the real run and the dry run alike."""
    extra = ["--dry-run"] if dry_run else ["--yes"]
    proc = run_inv(
        "pi.flash", "--node", "92", "--device", str(flash_env / "out.img"),
        "--image", "/nonexistent.img.xz", *extra,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "domum: --image /nonexistent.img.xz: no such image file"
    image = flash_env / "x.img"
    image.write_bytes(b"\0" * 4096)
    proc = run_inv(
        "pi.flash", "--node", "92", "--device", "/dev/sdzz", "--image", str(image), *extra
    )
    assert proc.returncode == 2, proc.stderr
    assert "--device /dev/sdzz: no such device" in proc.stderr
