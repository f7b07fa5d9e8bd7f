"""Read-only probes of a flash target (sysfs, /proc/self/mountinfo, /proc/swaps) and the pure
safety rules over them. `probe_target` is the only function here that reads the system;
`refusals` is a pure function of the facts, so every rule is a table test.

Rules (each refusal is one line naming the device and the reason):
  * the path is missing under /dev, or is neither a whole disk nor a regular file;
  * it is a partition (flash whole disks: /dev/sdb, not /dev/sdb1);
  * the disk, or one of its partitions, is mounted, used as swap, or held by another device
    (device-mapper, md RAID, LVM: /sys/block/X/holders);
  * it is the disk that holds `/`, the image cache, or the image being written;
  * it is smaller than the decompressed image;
  * it is read-only, or has no medium (size 0);
  * it is not removable, unless --force. Removable means sysfs `removable` = 1, or an SD/MMC
    card (mmcblk*), or a disk behind USB (card readers and USB sticks often report 0).
A regular file is a valid target (it becomes an image file) unless it is the image itself.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SYS_BLOCK = Path("/sys/class/block")

Kind = Literal["block", "file", "missing", "other"]


@dataclass(frozen=True)
class Partition:
    name: str
    size: int
    mountpoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetFacts:
    path: str
    kind: Kind
    name: str = ""  # kernel name (sdb, mmcblk0, loop3)
    is_partition: bool = False
    size: int | None = None  # bytes; None for a regular file that does not exist yet
    removable: bool = False
    read_only: bool = False
    model: str = ""
    transport: str = ""  # usb, mmc, loop, ...
    partitions: tuple[Partition, ...] = ()
    mountpoints: tuple[str, ...] = ()  # of the disk itself
    holders: tuple[str, ...] = ()  # devices stacked on the disk or its partitions
    swaps: tuple[str, ...] = ()
    # What the disk holds that must be protected: {"/": "vda", "image cache": "vda", ...}
    protected: Mapping[str, str] = field(default_factory=dict)
    file_id: tuple[int, int] | None = None  # (st_dev, st_ino) of a regular-file target

    @property
    def in_use(self) -> list[str]:
        out = [f"{self.path} mounted on {m}" for m in self.mountpoints]
        out += [f"/dev/{p.name} mounted on {m}" for p in self.partitions for m in p.mountpoints]
        out += [f"{s} is active swap" for s in self.swaps]
        out += [f"held by /dev/{h}" for h in self.holders]
        return out


def refusals(
    facts: TargetFacts,
    *,
    image_size: int | None,
    force: bool = False,
    image_id: tuple[int, int] | None = None,
) -> list[str]:
    """Every reason not to write to this target (empty: safe). Pure."""
    dev = facts.path
    if facts.kind == "missing":
        if dev.startswith("/dev/"):
            return [f"{dev}: no such device (see `lsblk` for disks)"]
        return []  # a new image file
    if facts.kind == "other":
        return [f"{dev}: neither a whole disk nor a regular file"]
    if facts.kind == "file":
        if image_id is not None and facts.file_id == image_id:
            return [f"{dev}: is the image being written"]
        return []
    out: list[str] = []
    if facts.is_partition:
        out.append(f"{dev}: is a partition; give the whole disk")
    out += [f"{dev}: in use: {u}" for u in facts.in_use]
    out += [f"{dev}: holds {what}" for what, disk in facts.protected.items() if disk == facts.name]
    if facts.read_only:
        out.append(f"{dev}: is read-only")
    if facts.size == 0:
        out.append(f"{dev}: has no medium (size 0)")
    if image_size is not None and facts.size is not None and facts.size < image_size:
        out.append(
            f"{dev}: too small: {human(facts.size)} < image {human(image_size)} decompressed"
        )
    if not force and not is_removable(facts):
        out.append(f"{dev}: not a removable disk (pass --force if you mean it)")
    return out


def is_removable(facts: TargetFacts) -> bool:
    return facts.removable or facts.name.startswith("mmcblk") or facts.transport in ("usb", "mmc")


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


# --- probes ------------------------------------------------------------------------------------


def _read(path: Path, default: str = "") -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return default


def mounts(mountinfo: str) -> dict[str, list[str]]:
    """major:minor -> mount points, parsed from /proc/self/mountinfo text (pure)."""
    out: dict[str, list[str]] = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            # Mount points escape spaces as \040.
            out.setdefault(fields[2], []).append(fields[4].replace("\\040", " "))
    return out


def _mount_sources(mountinfo: str) -> list[tuple[str, str, str]]:
    """(mount point, major:minor, source) for every mount."""
    rows = []
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        f, p = pre.split(), post.split()
        if len(f) > 4 and len(p) > 1:
            rows.append((f[4].replace("\\040", " "), f[2], p[1]))
    return rows


def _disk_of_devno(devno: str) -> str | None:
    """Whole-disk name for a block device number, following device-mapper/md down to disks."""
    link = Path(f"/sys/dev/block/{devno}")
    if not link.exists():
        return None
    real = link.resolve()
    if (real / "partition").exists():
        real = real.parent
    slaves = (
        sorted(p.name for p in (real / "slaves").glob("*")) if (real / "slaves").is_dir() else []
    )
    if slaves:
        dev = _read(SYS_BLOCK / slaves[0] / "dev")
        return _disk_of_devno(dev) if dev else slaves[0]
    return real.name


def disk_of_path(path: str | os.PathLike[str], mountinfo: str) -> str | None:
    """Name of the disk holding a file or directory (its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    st = p.stat()
    disk = _disk_of_devno(f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    if disk:
        return disk
    # Anonymous devices (btrfs subvolumes, overlayfs): use the source of the enclosing mount.
    best = ("", "", "")
    for mnt, _devno, source in _mount_sources(mountinfo):
        if (str(p) == mnt or str(p).startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best[0]):
            best = (mnt, _devno, source)
    if best[2].startswith("/dev/") and os.path.exists(best[2]):
        rdev = os.stat(best[2]).st_rdev
        return _disk_of_devno(f"{os.major(rdev)}:{os.minor(rdev)}")
    return None


def probe_target(path: str, *, protect: Mapping[str, str | os.PathLike[str]]) -> TargetFacts:
    """Facts about a target path. `protect` maps labels ("/", "image cache") to paths."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return TargetFacts(path=path, kind="missing")
    if stat.S_ISREG(st.st_mode):
        return TargetFacts(path=path, kind="file", size=st.st_size, file_id=(st.st_dev, st.st_ino))
    if not stat.S_ISBLK(st.st_mode):
        return TargetFacts(path=path, kind="other")
    devno = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    sysdir = Path(f"/sys/dev/block/{devno}").resolve()
    name = sysdir.name
    mountinfo = Path("/proc/self/mountinfo").read_text()
    mounted = mounts(mountinfo)
    parts = tuple(
        Partition(
            name=p.name,
            size=int(_read(p / "size", "0")) * 512,
            mountpoints=tuple(mounted.get(_read(p / "dev"), [])),
        )
        for p in sorted(sysdir.iterdir())
        if p.name.startswith(name) and (p / "partition").exists()
    )
    holders = [h.name for h in (sysdir / "holders").glob("*")]
    for p in parts:
        holders += [h.name for h in (sysdir / p.name / "holders").glob("*")]
    names = {name, *(p.name for p in parts)}
    swaps = [
        line.split()[0]
        for line in _read(Path("/proc/swaps")).splitlines()[1:]
        if line.split() and os.path.basename(os.path.realpath(line.split()[0])) in names
    ]
    protected = {label: disk_of_path(p, mountinfo) or "" for label, p in protect.items()}
    device_link = (sysdir / "device").resolve() if (sysdir / "device").exists() else sysdir
    model = " ".join(
        filter(None, (_read(sysdir / "device" / "vendor"), _read(sysdir / "device" / "model")))
    )
    transport = (
        "usb"
        if "/usb" in str(device_link)
        else "mmc"
        if "/mmc" in str(device_link)
        else "loop"
        if name.startswith("loop")
        else ""
    )
    return TargetFacts(
        path=path,
        kind="block",
        name=name,
        is_partition=(sysdir / "partition").exists(),
        size=int(_read(sysdir / "size", "0")) * 512,
        removable=_read(sysdir / "removable") == "1",
        read_only=_read(sysdir / "ro") == "1",
        model=model or ("loop device" if name.startswith("loop") else ""),
        transport=transport,
        partitions=parts,
        mountpoints=tuple(mounted.get(devno, [])),
        holders=tuple(sorted(set(holders))),
        swaps=tuple(swaps),
        protected={k: v for k, v in protected.items() if v},
    )


def describe_target(facts: TargetFacts) -> list[str]:
    """Lines shown before the confirmation: model, size, partitions."""
    if facts.kind != "block":
        size = "new file" if facts.size is None else f"existing file, {human(facts.size)}"
        return [f"{facts.path}: regular file ({size})"]
    lines = [
        f"{facts.path}: {facts.model or 'unknown model'}, {human(facts.size or 0)}"
        + (f", {facts.transport}" if facts.transport else "")
        + (", removable" if is_removable(facts) else ", NOT removable")
    ]
    for p in facts.partitions:
        where = f" mounted on {', '.join(p.mountpoints)}" if p.mountpoints else ""
        lines.append(f"  /dev/{p.name}: {human(p.size)}{where}")
    if not facts.partitions:
        lines.append("  (no partitions)")
    return lines
