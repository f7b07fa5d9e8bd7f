"""pi.flash pure parts: safety rules (table), image resolution, formats, planner, first boot."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from domum_tasks.errors import ConfigError, Refused
from domum_tasks.inventory.loader import load
from domum_tasks.pi.flash import formats as ff
from domum_tasks.pi.flash import session as flash_session
from domum_tasks.pi.flash.facts import Partition, TargetFacts, mounts, refusals
from domum_tasks.pi.flash.firstboot import FirstBoot, first_partition, for_node
from domum_tasks.pi.flash.image import cache_name, resolve_image
from domum_tasks.pi.flash.plan import FlashInput, plan_flash
from tests.conftest import LOOPBACK_INVENTORY
from tests.pi_flash_support import MIB, PUBKEY, compress, talos_like_raw

GiB = 1 << 30
SD = TargetFacts(
    path="/dev/sdb",
    kind="block",
    name="sdb",
    size=32 * GiB,
    removable=True,
    model="Generic SD",
    transport="usb",
    protected={"/": "nvme0n1"},
)

# node 92 (Pi 5 worker): overlay rpi_5 (no options) + the Longhorn extensions. The id is the
# sha256 of the factory's canonical YAML (go-yaml layout of the image-factory vectors).
NODE92_SCHEMATIC_YAML = (
    "overlay:\n    image: siderolabs/sbc-raspberrypi\n    name: rpi_5\ncustomization:\n"
    "    systemExtensions:\n        officialExtensions:\n"
    "            - siderolabs/iscsi-tools\n            - siderolabs/util-linux-tools\n"
)
NODE92_SCHEMATIC_ID = hashlib.sha256(NODE92_SCHEMATIC_YAML.encode()).hexdigest()


@pytest.mark.parametrize(
    ("facts", "image_size", "force", "expect"),
    [
        (SD, 4 * GiB, False, []),
        (replace(SD, mountpoints=("/media/x",)), 4 * GiB, True, ["mounted on /media/x"]),
        (
            replace(SD, partitions=(Partition("sdb1", GiB, ("/media/boot",)),)),
            None,
            False,
            ["/dev/sdb1 mounted on /media/boot"],
        ),
        (replace(SD, holders=("dm-0",)), None, False, ["held by /dev/dm-0"]),
        (replace(SD, swaps=("/dev/sdb2",)), None, False, ["/dev/sdb2 is active swap"]),
        (replace(SD, protected={"/": "sdb"}), None, True, ["holds /"]),
        (
            replace(SD, protected={"/": "nvme0n1", "image cache": "sdb"}),
            None,
            True,
            ["holds image cache"],
        ),
        (SD, 64 * GiB, False, ["too small: 32.0 GiB < image 64.0 GiB"]),
        (replace(SD, removable=False, transport="sata"), None, False, ["not a removable disk"]),
        (replace(SD, removable=False, transport="sata"), None, True, []),
        (
            replace(SD, removable=False, transport="", name="mmcblk0", path="/dev/mmcblk0"),
            None,
            False,
            [],
        ),
        (replace(SD, removable=False, transport="usb"), None, False, []),
        (
            replace(SD, is_partition=True, path="/dev/sdb1", name="sdb1"),
            None,
            False,
            ["is a partition"],
        ),
        (replace(SD, read_only=True), None, False, ["read-only"]),
        (replace(SD, size=0), None, False, ["no medium"]),
        (TargetFacts(path="/dev/sdz", kind="missing"), None, False, ["no such device"]),
        (TargetFacts(path="/tmp/new.img", kind="missing"), 4 * GiB, False, []),
        (TargetFacts(path="/tmp/old.img", kind="file", size=1, file_id=(1, 2)), 4 * GiB, False, []),
        (TargetFacts(path="/dev/null", kind="other"), None, False, ["neither a whole disk"]),
    ],
)
def test_refusals_table(
    facts: TargetFacts, image_size: int | None, force: bool, expect: list[str]
) -> None:
    got = refusals(facts, image_size=image_size, force=force)
    assert len(got) == len(expect), got
    for text, line in zip(expect, got, strict=True):
        assert text in line and facts.path in line


def test_refusal_target_is_the_image_itself() -> None:
    facts = TargetFacts(path="/tmp/a.img", kind="file", size=10, file_id=(5, 9))
    assert refusals(facts, image_size=10, image_id=(5, 9)) == [
        "/tmp/a.img: is the image being written"
    ]


def test_mountinfo_parser() -> None:
    text = (
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "90 27 7:3 / /mnt/my\\040disk rw - ext4 /dev/loop3 rw\n"
        "91 27 7:3 / /srv rw - ext4 /dev/loop3 rw\n"
    )
    assert mounts(text) == {"254:0": ["/"], "7:3": ["/mnt/my disk", "/srv"]}


def test_image_for_talos_pi_is_factory_raw_zst_with_default_schematic() -> None:
    inv = load()
    spec = resolve_image(inv, 92)
    factory, version = inv.cluster.image_factory, inv.cluster.talos_version
    assert spec.source == f"{factory}/image/{NODE92_SCHEMATIC_ID}/{version}/metal-arm64.raw.zst"
    assert spec.trust_on_first_use and spec.sha256 is None and spec.origin == "image-factory"


def test_image_for_raspios_comes_from_inventory_and_override_wins() -> None:
    inv = load()
    spec = resolve_image(inv, 93)
    assert spec.source == inv.node(93).image.url  # type: ignore[union-attr]
    assert resolve_image(inv, 93, "/tmp/x.img.xz").source == "/tmp/x.img.xz"
    with pytest.raises(ConfigError, match="Proxmox VM"):
        resolve_image(inv, 96)
    with pytest.raises(ConfigError, match="no such node"):
        resolve_image(inv, 42)


def test_cache_name_is_stable_and_distinct() -> None:
    a = cache_name("https://f/image/aaa/v1/metal-arm64.raw.zst")
    b = cache_name("https://f/image/bbb/v1/metal-arm64.raw.zst")
    assert (
        a != b
        and a.endswith("metal-arm64.raw.zst")
        and a == cache_name("https://f/image/aaa/v1/metal-arm64.raw.zst")
    )


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fmt")
    raw = d / "disk.raw"
    raw.write_bytes(talos_like_raw(4))
    out = {"raw": raw, **{f: compress(raw, f) for f in ("xz", "zst", "gz")}}
    nocs = d / "nocs.zst"
    subprocess.run(
        ["zstd", "-q", "--no-content-size", "-o", str(nocs)], stdin=raw.open("rb"), check=True
    )
    out["nocs"] = nocs
    return out


def test_formats_detected_by_magic_not_extension(archives: dict[str, Path], tmp_path: Path) -> None:
    for fmt in ("xz", "zst", "gz", "raw"):
        disguised = tmp_path / f"image-{fmt}.img"
        disguised.write_bytes(archives[fmt].read_bytes())
        assert ff.file_format(disguised) == fmt


def test_uncompressed_sizes(archives: dict[str, Path], tmp_path: Path) -> None:
    size = 4 * MIB
    assert ff.uncompressed_size(archives["raw"]) == size
    assert ff.uncompressed_size(archives["xz"]) == size
    assert len(ff.xz_blocks(archives["xz"])) == 4  # --block-size=1MiB
    assert ff.uncompressed_size(archives["zst"]) == size
    assert ff.uncompressed_size(archives["nocs"]) is None
    assert ff.uncompressed_size(archives["gz"]) is None
    two = tmp_path / "two.xz"
    two.write_bytes(archives["xz"].read_bytes() * 2)
    assert ff.uncompressed_size(two) == 2 * size
    for fmt in ("xz", "zst"):
        cut = tmp_path / f"cut.{fmt}"
        cut.write_bytes(archives[fmt].read_bytes()[:-1000])
        with pytest.raises(ff.FormatError, match="truncated"):
            ff.uncompressed_size(cut)


def _input(**kw: object) -> FlashInput:
    inv = load()
    base = dict(
        node_id=92,
        hostname="domum-xr2",
        os="talos",
        device="/dev/sdb",
        spec=resolve_image(inv, 92),
        image_path=Path("/cache/x.raw.zst"),
        target=SD,
        image_size=2 * GiB,
    )
    base.update(kw)
    return FlashInput(**base)  # type: ignore[arg-type]


def test_plan_talos_steps_and_next_step() -> None:
    plan = plan_flash(_input())
    steps = json.loads(plan.to_json())
    assert [s["action"] for s in steps] == ["download", "write-image", "verify"]
    assert all(s["kind"] == "local" for s in steps)
    assert steps[1]["destructive"] is True and "Generic SD" in steps[1]["desc"]
    assert steps[1]["args"]["device"] == "/dev/sdb"
    assert "next: inv talos.apply --node 92 --insecure" in plan.notes


def test_plan_raspios_has_customize_and_local_image_no_download() -> None:
    boot = for_node("domum-dns", "pi", [PUBKEY], 93)
    spec = replace(resolve_image(load(), 93, "/tmp/os.img.xz"))
    plan = plan_flash(
        _input(
            node_id=93, os="raspios", spec=spec, image_path=Path("/tmp/os.img.xz"), firstboot=boot
        )
    )
    actions = [s["action"] for s in json.loads(plan.to_json())]
    assert actions == ["write-image", "verify", "customize"]


def test_plan_refuses_unsafe_target() -> None:
    with pytest.raises(Refused, match="mounted on /media/sd"):
        plan_flash(_input(target=replace(SD, mountpoints=("/media/sd",))))


def test_firstboot_files_are_valid_cloud_init() -> None:
    boot = FirstBoot("domum-dns", "pi", (PUBKEY,))
    files = boot.files()
    assert set(files) == {"user-data", "meta-data", "network-config", "ssh"}
    assert files["user-data"].startswith("#cloud-config\n")
    ud = yaml.safe_load(files["user-data"])
    assert ud["hostname"] == "domum-dns" and ud["ssh_pwauth"] is False
    assert ud["user"] == {"name": "pi", "lock_passwd": True, "ssh_authorized_keys": [PUBKEY]}
    assert ["systemctl", "enable", "--now", "ssh"] in ud["runcmd"]
    assert yaml.safe_load(files["network-config"])["network"]["ethernets"]["eth0"]["dhcp4"] is True
    meta = yaml.safe_load(files["meta-data"])
    assert meta["local-hostname"] == "domum-dns" and meta["instance-id"].startswith(
        "domum-domum-dns-"
    )
    assert boot.files() == files  # deterministic


def test_firstboot_needs_a_key() -> None:
    with pytest.raises(ConfigError, match=r"nodes\.93: no SSH public key"):
        for_node("domum-dns", "pi", [], 93)
    with pytest.raises(ConfigError, match="not an OpenSSH public key"):
        for_node("domum-dns", "pi", ["hunter2"], 93)


def test_first_partition_from_mbr() -> None:
    mbr = bytearray(512)
    mbr[446 + 4] = 0x0C
    mbr[446 + 8 : 446 + 16] = (8192).to_bytes(4, "little") + (131072).to_bytes(4, "little")
    mbr[510:512] = b"\x55\xaa"
    assert first_partition(bytes(mbr)) == (8192 * 512, 131072 * 512)
    mbr[446 + 4] = 0x83
    with pytest.raises(Exception, match="not a FAT boot partition"):
        first_partition(bytes(mbr))


def test_firstboot_from_inventory_static_by_default_overrides_per_node() -> None:
    from domum_tasks.inventory.model import Inventory
    from domum_tasks.pi.flash.cloudinit import from_inventory

    data = yaml.safe_load(LOOPBACK_INVENTORY.read_text())
    data["raspios"] = {
        "timezone": "Europe/Berlin",
        "keyboard": "de",
        "wifi": {"ssid": "lab", "country": "DE"},
    }
    data["nodes"][94]["raspios"] = {"keyboard": "us", "dhcp": True}
    inv = Inventory.model_validate(data)
    b93 = from_inventory(inv, 93, [PUBKEY], wifi_psk="12345678")
    assert b93.static is not None and b93.static.address == "127.0.0.93/24"
    assert (b93.timezone, b93.keyboard) == ("Europe/Berlin", "de")
    assert "12345678" not in repr(b93) and "12345678" not in json.dumps(b93.summary())
    b94 = from_inventory(inv, 94, [PUBKEY], wifi_psk=None)  # dry run: PSK never read
    assert b94.static is None and (b94.timezone, b94.keyboard) == ("Europe/Berlin", "us")
    assert b94.wifi is not None and b94.wifi.psk == "<secret>"
    with pytest.raises(ConfigError, match="8 to 63 characters"):
        from_inventory(inv, 93, [PUBKEY], wifi_psk="short")


def test_raspios_section_is_strict() -> None:
    from pydantic import ValidationError

    from domum_tasks.inventory.model import Inventory

    data = yaml.safe_load(LOOPBACK_INVENTORY.read_text())
    data["raspios"] = {"timezon": "Europe/Berlin"}
    with pytest.raises(ValidationError, match="did you mean 'timezone'"):
        Inventory.model_validate(data)
    data["raspios"] = {"wifi": {"ssid": "x", "country": "germany"}}
    with pytest.raises(ValidationError, match="ISO 3166 country code"):
        Inventory.model_validate(data)


def _mbr(entries: list[tuple[int, int, int]], flag: int = 0x00) -> bytearray:
    sector = bytearray(512)
    for i, (ptype, start, count) in enumerate(entries):
        base = 446 + 16 * i
        sector[base] = flag
        sector[base + 4] = ptype
        sector[base + 8 : base + 16] = start.to_bytes(4, "little") + count.to_bytes(4, "little")
    sector[510:512] = b"\x55\xaa"
    return sector


@pytest.mark.parametrize(
    ("head", "found"),
    [
        (b"console=serial0,115200 console=tty1 root=PARTUUID=abc rootwait\n", "text ('console="),
        (b"", "an empty file"),
        (bytes(2 * MIB), "no MBR or GPT partition table"),
        (bytes(_mbr([(0x0C, 8192, 1 << 17)]))[:512] + bytes(1000), "only 1512 bytes with an MBR"),
        (bytes(_mbr([(0xEE, 1, 1 << 20)])) + bytes(MIB), "a protective MBR without the GPT header"),
        (bytes(_mbr([(0x0C, 8192, 1 << 17)], flag=0x42)) + bytes(MIB), "no MBR or GPT"),
    ],
)
def test_non_disk_images_are_named(head: bytes, found: str) -> None:
    from domum_tasks.pi.flash.disklabel import image_problem

    problem = image_problem(head)
    assert problem is not None and problem.startswith(found), problem


def test_disk_images_pass() -> None:
    from domum_tasks.pi.flash.disklabel import image_problem
    from tests.pi_flash_support import gpt_head

    mbr = bytes(_mbr([(0x0C, 8192, 1 << 17), (0x83, 1 << 17, 1 << 20)]))
    assert image_problem(mbr + bytes(MIB)) is None
    assert image_problem(gpt_head(8) + bytes(MIB)) is None
    fat = bytearray(MIB)  # a lone FAT filesystem: 55AA, but boot code where the table would be
    fat[0:11] = b"\xeb\x58\x90mkfs.fat"
    fat[446:510] = bytes(range(64))
    fat[510:512] = b"\x55\xaa"
    assert image_problem(bytes(fat)) == "a FAT filesystem (one partition, not a whole disk)"


def test_plan_for_a_new_image_file_erases_nothing() -> None:
    new = TargetFacts(path="/tmp/out.img", kind="missing")
    steps = json.loads(plan_flash(_input(device="/tmp/out.img", target=new)).to_json())
    write = steps[1]
    assert "destructive" not in write and "ERASES" not in write["desc"]
    assert write["desc"].startswith("writes a new image file /tmp/out.img")


def test_progress_rate_is_in_binary_units() -> None:
    from types import SimpleNamespace

    from domum_tasks.progress import speed_column

    task = SimpleNamespace(finished_speed=None, speed=3 * 1024 * 1024)
    assert speed_column().render(task).plain == "3.0 MiB/s"


def test_node_that_is_not_a_number_gets_one_message_everywhere() -> None:
    from invoke import Context, Exit

    from domum_tasks.pi.fleet import tasks as fleet_tasks
    from domum_tasks.talos.ops import tasks as talos_tasks

    calls = [
        lambda: fleet_tasks.run(Context(), node="abc", cmd="true", dry_run=True),
        lambda: talos_tasks.apply(Context(), node="abc", dry_run=True),
        lambda: flash_session.plan(node="abc", device="x", image="", force=False),
    ]
    messages = set()
    for call in calls:
        try:
            call()
        except Exit as exc:
            messages.add((exc.code, str(exc.message)))
        except ConfigError as exc:
            messages.add((2, f"domum: {exc}"))
    assert messages == {
        (2, "domum: --node abc: no such node; valid ids: 90, 91, 92, 93, 94, 95, 96, 97, 98")
    }
