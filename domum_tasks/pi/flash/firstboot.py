"""First-boot customisation of a Raspberry Pi OS image, written into its FAT boot partition
without mounting it (pyfatfs at the partition's offset, found in the MBR).

Current Raspberry Pi OS (trixie, `cloudinit-rpi` init format) reads cloud-init NoCloud files
from the boot partition: `user-data`, `meta-data` and `network-config`. Following rpi-imager's
generator: singular `user:` (keeps the default user's groups and its passwordless sudo, which
`pi.update` needs), password locked and SSH password login off (keys only), and sshd enabled by
`runcmd`, since Raspberry Pi OS ships it disabled. The legacy empty `ssh` file is written too,
and `ds=nocloud;i=<instance-id>` is appended to cmdline.txt as Imager does. The network is DHCP
on eth0 (addresses come from the router's reservation for the inventory MAC).
Older images that use `firstrun.sh` (bookworm) are not handled.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from typing import Any

import yaml

from ...errors import ConfigError, VerifyError

FAT_TYPES = {0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E, 0xEF}


@dataclass(frozen=True)
class FirstBoot:
    hostname: str
    user: str
    authorized_keys: tuple[str, ...]

    def files(self) -> dict[str, str]:
        """File name in the boot partition -> content (pure, deterministic)."""
        user_data: dict[str, Any] = {
            "hostname": self.hostname,
            "manage_etc_hosts": True,
            "ssh_pwauth": False,
            "user": {
                "name": self.user,
                "lock_passwd": True,
                "ssh_authorized_keys": list(self.authorized_keys),
            },
            "runcmd": [["systemctl", "enable", "--now", "ssh"]],
        }
        network = {
            "network": {
                "version": 2,
                "ethernets": {"eth0": {"dhcp4": True, "optional": True}},
            }
        }
        ud = "#cloud-config\n" + yaml.safe_dump(user_data, sort_keys=False)
        nc = yaml.safe_dump(network, sort_keys=False)
        meta = yaml.safe_dump(
            {"instance-id": self.instance_id(ud + nc), "local-hostname": self.hostname},
            sort_keys=False,
        )
        return {"user-data": ud, "meta-data": meta, "network-config": nc, "ssh": ""}

    def instance_id(self, content: str) -> str:
        # Same content, same id (re-flashing is idempotent); new content makes cloud-init rerun.
        return f"domum-{self.hostname}-{hashlib.sha256(content.encode()).hexdigest()[:12]}"


def for_node(hostname: str, user: str, keys: list[str], node_id: int) -> FirstBoot:
    keys = [k.strip() for k in keys if k.strip()]
    if not keys:
        raise ConfigError(
            f"nodes.{node_id}: no SSH public key to install; set ssh.authorized_keys (or "
            f"nodes.{node_id}.authorized_keys) in the inventory, or create the .pub of ssh.key_file"
        )
    for key in keys:
        if not key.startswith(("ssh-", "ecdsa-", "sk-")):
            raise ConfigError(f"ssh.authorized_keys: {key[:30]!r}... is not an OpenSSH public key")
    return FirstBoot(hostname=hostname, user=user, authorized_keys=tuple(keys))


def first_partition(mbr: bytes) -> tuple[int, int]:
    """(byte offset, byte size) of partition 1 from an MBR sector; it must be FAT."""
    if len(mbr) < 512 or mbr[510:512] != b"\x55\xaa":
        raise VerifyError(
            "no MBR partition table on the written image (not a Raspberry Pi OS image?)"
        )
    entry = mbr[446:462]
    ptype = entry[4]
    start, sectors = struct.unpack("<II", entry[8:16])
    if ptype not in FAT_TYPES or not sectors:
        raise VerifyError(f"partition 1 is type 0x{ptype:02x}, not a FAT boot partition")
    return start * 512, sectors * 512


def customize(device: str, boot: FirstBoot) -> dict[str, int]:
    """Write the first-boot files into partition 1 of `device`, then read them back."""
    from pyfatfs.PyFatFS import PyFatFS

    with open(device, "rb") as fh:
        offset, _size = first_partition(fh.read(512))
    files = boot.files()
    fs = PyFatFS(device, offset=offset, preserve_case=True)
    try:
        existing = {name.lower(): name for name in fs.listdir("/")}
        for name, content in files.items():
            fs.writebytes(f"/{existing.get(name.lower(), name)}", content.encode())
        cmdline_name = existing.get("cmdline.txt")
        if cmdline_name:
            cmdline = fs.readbytes(f"/{cmdline_name}").decode().strip()
            ds = f"ds=nocloud;i={boot.instance_id(files['user-data'] + files['network-config'])}"
            words = [w for w in cmdline.split() if not w.startswith("ds=nocloud")]
            fs.writebytes(f"/{cmdline_name}", (" ".join([*words, ds]) + "\n").encode())
    finally:
        fs.close()
    _invalidate_fsinfo(device, offset)
    # Read back through a fresh reader: what the Pi will see.
    fs = PyFatFS(device, offset=offset, preserve_case=True, read_only=True)
    try:
        for name, content in files.items():
            if fs.readbytes(f"/{name}") != content.encode():
                raise VerifyError(f"{device}: boot partition file {name} reads back differently")
    finally:
        fs.close()
    return {name: len(content) for name, content in files.items()}


def _invalidate_fsinfo(device: str, offset: int) -> None:
    """pyfatfs does not maintain FAT32's FSInfo free-cluster hint, so mark it unknown
    (0xFFFFFFFF, allowed by the FAT spec): the OS recounts instead of trusting a stale value."""
    with open(device, "r+b") as fh:
        fh.seek(offset)
        boot = fh.read(512)
        bytes_per_sector = struct.unpack("<H", boot[11:13])[0] or 512
        fat16_size = struct.unpack("<H", boot[22:24])[0]
        if fat16_size:  # FAT12/16: no FSInfo
            return
        fsinfo, backup = struct.unpack("<HH", boot[48:52])
        for sector in {fsinfo, backup + fsinfo if backup else fsinfo}:
            if sector in (0, 0xFFFF):
                continue
            pos = offset + sector * bytes_per_sector
            fh.seek(pos)
            info = fh.read(512)
            if info[:4] == b"RRaA" and info[484:488] == b"rrAa":
                fh.seek(pos + 488)
                fh.write(b"\xff\xff\xff\xff\xff\xff\xff\xff")  # free count, next free
        fh.flush()
        os.fsync(fh.fileno())
