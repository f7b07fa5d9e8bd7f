"""The cloud-init NoCloud files a Raspberry Pi OS node boots with (pure: no I/O).

Current Raspberry Pi OS (trixie, `cloudinit-rpi` init format) reads `user-data`, `meta-data` and
`network-config` from the FAT boot partition. Following rpi-imager's generator: singular `user:`
(keeps the default user's groups and its passwordless sudo, which `pi.update` needs), password
locked and SSH password login off (keys only), sshd enabled by `runcmd` since Raspberry Pi OS
ships it disabled, and the legacy empty `ssh` file.

Network (netplan v2, rendered by cloud-init for NetworkManager):
* eth0 gets the inventory's address: `ip/<node_cidr prefix>`, a default route via
  `cluster.gateway` and `cluster.dns` as nameservers, so the Pi answers on the address the
  inventory, known_hosts and backups expect from the first boot on, DHCP reservation or not;
  `raspios.dhcp: true` (top level or per node) keeps DHCP instead;
* Wi-Fi, like rpi-imager: `raspios.wifi` with the SSID, the regulatory country and the PSK read
  from the secret `raspios.wifi.psk_secret`; wlan0 uses DHCP (a second way in, not the address of
  record);
* optional `raspios.timezone`, `raspios.locale` and `raspios.keyboard` (XKB layout), as Imager's
  "OS customisation" page offers.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from ...errors import ConfigError

if TYPE_CHECKING:
    from ...inventory.model import Inventory

PSK_PLACEHOLDER = "<secret>"  # what a dry run writes instead of the real PSK (never decrypted)


@dataclass(frozen=True)
class StaticAddress:
    address: str  # with prefix, e.g. 10.0.10.93/24
    gateway: str
    dns: tuple[str, ...]


@dataclass(frozen=True)
class Wifi:
    ssid: str
    country: str
    psk: str = field(repr=False)  # a secret: never in repr, plans or logs
    hidden: bool = False


@dataclass(frozen=True)
class FirstBoot:
    hostname: str
    user: str
    authorized_keys: tuple[str, ...]
    static: StaticAddress | None = None  # None: eth0 by DHCP
    timezone: str | None = None
    locale: str | None = None
    keyboard: str | None = None
    wifi: Wifi | None = None

    def user_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "hostname": self.hostname,
            "manage_etc_hosts": True,
            "ssh_pwauth": False,
            "user": {
                "name": self.user,
                "lock_passwd": True,
                "ssh_authorized_keys": list(self.authorized_keys),
            },
        }
        if self.timezone:
            data["timezone"] = self.timezone
        if self.locale:
            data["locale"] = self.locale
        if self.keyboard:
            data["keyboard"] = {"model": "pc105", "layout": self.keyboard}
        data["runcmd"] = [["systemctl", "enable", "--now", "ssh"]]
        return data

    def network(self) -> dict[str, Any]:
        eth0: dict[str, Any]
        if self.static is None:
            eth0 = {"dhcp4": True, "optional": True}
        else:
            eth0 = {
                "dhcp4": False,
                "addresses": [self.static.address],
                "routes": [{"to": "default", "via": self.static.gateway}],
                "nameservers": {"addresses": list(self.static.dns)},
                "optional": True,
            }
        net: dict[str, Any] = {"version": 2, "ethernets": {"eth0": eth0}}
        if self.wifi is not None:
            point: dict[str, Any] = {"password": self.wifi.psk}
            if self.wifi.hidden:
                point["hidden"] = True
            net["wifis"] = {
                "wlan0": {
                    "dhcp4": True,
                    "regulatory-domain": self.wifi.country,
                    "access-points": {self.wifi.ssid: point},
                    "optional": True,
                }
            }
        return {"network": net}

    def files(self) -> dict[str, str]:
        """File name in the boot partition -> content (pure, deterministic)."""
        ud = "#cloud-config\n" + yaml.safe_dump(self.user_data(), sort_keys=False)
        nc = yaml.safe_dump(self.network(), sort_keys=False)
        meta = yaml.safe_dump(
            {"instance-id": self.instance_id(ud + nc), "local-hostname": self.hostname},
            sort_keys=False,
        )
        return {"user-data": ud, "meta-data": meta, "network-config": nc, "ssh": ""}

    def instance_id(self, content: str) -> str:
        # Same content, same id (re-flashing is idempotent); new content makes cloud-init rerun.
        return f"domum-{self.hostname}-{hashlib.sha256(content.encode()).hexdigest()[:12]}"

    def summary(self) -> dict[str, Any]:
        """What the plan shows: settings, never the PSK."""
        out: dict[str, Any] = {
            "hostname": self.hostname,
            "user": self.user,
            "eth0": self.static.address if self.static else "dhcp",
        }
        for key in ("timezone", "locale", "keyboard"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.wifi is not None:
            out["wifi"] = f"{self.wifi.ssid} ({self.wifi.country}, PSK from secrets)"
        return out


def _check_keys(keys: list[str], node_id: int) -> tuple[str, ...]:
    keys = [k.strip() for k in keys if k.strip()]
    if not keys:
        raise ConfigError(
            f"nodes.{node_id}: no SSH public key to install; set ssh.authorized_keys (or "
            f"nodes.{node_id}.authorized_keys) in the inventory, or create the .pub of ssh.key_file"
        )
    for key in keys:
        if not key.startswith(("ssh-", "ecdsa-", "sk-")):
            raise ConfigError(f"ssh.authorized_keys: {key[:30]!r}... is not an OpenSSH public key")
    return tuple(keys)


def for_node(hostname: str, user: str, keys: list[str], node_id: int) -> FirstBoot:
    """Keys only, eth0 by DHCP (what callers without an inventory get)."""
    return FirstBoot(hostname=hostname, user=user, authorized_keys=_check_keys(keys, node_id))


def from_inventory(
    inv: Inventory, node_id: int, keys: list[str], wifi_psk: str | None = None
) -> FirstBoot:
    """The node's first boot from the inventory: static eth0 unless `raspios.dhcp`, plus the
    optional `raspios:` settings. `wifi_psk` is the decrypted secret, or None on a dry run."""
    node = inv.node(node_id)
    settings = inv.raspios_for(node)
    c = inv.cluster
    static = None
    if not settings.dhcp:
        iface = ipaddress.IPv4Interface(f"{node.ip}/{c.node_cidr.prefixlen}")
        static = StaticAddress(iface.with_prefixlen, str(c.gateway), tuple(str(d) for d in c.dns))
    wifi = None
    if settings.wifi is not None:
        w = settings.wifi
        psk = PSK_PLACEHOLDER if wifi_psk is None else wifi_psk
        if wifi_psk is not None and not 8 <= len(wifi_psk) <= 64:
            raise ConfigError(
                f"secret {w.psk_secret!r}: a WPA2 PSK is 8 to 63 characters (or 64 hex digits), "
                f"got {len(wifi_psk)} characters"
            )
        wifi = Wifi(ssid=w.ssid, country=w.country, psk=psk, hidden=w.hidden)
    return FirstBoot(
        hostname=node.hostname,
        user=node.user,
        authorized_keys=_check_keys(keys, node_id),
        static=static,
        timezone=settings.timezone,
        locale=settings.locale,
        keyboard=settings.keyboard,
        wifi=wifi,
    )
