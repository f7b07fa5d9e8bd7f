"""The typed model of config/domum.yaml. Loading and error reporting live in loader.py.

Every model forbids unknown keys (with a "did you mean"), and the Inventory runs the cross-field
checks that need the whole file: unique ids/IPs/MACs/hostnames, addresses inside the node CIDR,
references to defined Proxmox hosts, backup targets and hosts.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

Role = Literal["controlplane", "worker", "edge"]
Platform = Literal["rpi3", "rpi4", "rpi5", "proxmox-vm", "baremetal"]
OS = Literal["talos", "raspios"]
PI_PLATFORMS = ("rpi3", "rpi4", "rpi5")

_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_TALOS_VERSION = re.compile(r"^v1\.\d+\.\d+$")
_K8S_VERSION = re.compile(r"^v1\.\d+\.\d+$")
_SCHEMATIC_ID = re.compile(r"^[0-9a-f]{64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _check(pattern: re.Pattern[str], what: str, example: str) -> Any:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise PydanticCustomError(
                "format",
                "{value} is not {what} (e.g. {example})",
                {"value": repr(value), "what": what, "example": example},
            )
        return value

    return AfterValidator(check)


def _as_text(value: Any) -> Any:
    """YAML reads `1.13` as a float; take it as text so the format check can say what is wrong."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Mac = Annotated[str, AfterValidator(str.lower), _check(_MAC, "a MAC address", "dc:a6:32:01:02:03")]
Hostname = Annotated[str, _check(_HOSTNAME, "a lowercase DNS label", "domum-cp1")]
TalosVersion = Annotated[
    str, BeforeValidator(_as_text), _check(_TALOS_VERSION, "a Talos version", "v1.13.9")
]
K8sVersion = Annotated[
    str, BeforeValidator(_as_text), _check(_K8S_VERSION, "a Kubernetes version", "v1.35.4")
]
SchematicId = Annotated[
    str, _check(_SCHEMATIC_ID, "a 64-hex Image Factory schematic id", "376567988ad3...")
]
Sha256 = Annotated[str, _check(_SHA256, "a sha256 hex digest", "64 hex characters")]


class Strict(BaseModel):
    """Unknown keys are errors that name the closest valid key."""

    # defer_build: validators are built at the first validation, not at import (about 0.2 s)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = {f.alias or name for name, f in cls.model_fields.items()}
            for key in data:
                if str(key) not in known:
                    close = difflib.get_close_matches(str(key), sorted(known), n=1)
                    hint = (
                        f"did you mean {close[0]!r}?"
                        if close
                        else f"valid keys: {', '.join(sorted(known))}"
                    )
                    raise PydanticCustomError(
                        "unknown_key",
                        "unknown key {quoted}; {hint}",
                        {"key": str(key), "quoted": repr(str(key)), "hint": hint},
                    )
        return data


class Schematic(Strict):
    """Image Factory customization. `id` caches the factory's answer for offline use."""

    extensions: list[str] = Field(default_factory=list)
    extra_kernel_args: list[str] = Field(default_factory=list)
    id: SchematicId | None = None


_GO_DURATION = re.compile(r"^[-+]?(?:0|(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+)$")
_DURATION_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _watchdog_timeout(value: str) -> str:
    """A Go duration of at least 10s: Talos's WatchdogTimerConfig Validate (a negative or
    shorter timeout is its "minimum value is 10s" error)."""
    if not _GO_DURATION.match(value):
        raise PydanticCustomError(
            "format", "{value} is not a Go duration (e.g. 5m)", {"value": repr(value)}
        )
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", value)
    seconds = sum(float(n) * _DURATION_S[u] for n, u in parts)
    if value.startswith("-") or seconds < 10:
        raise PydanticCustomError("range", "{value}: minimum value is 10s", {"value": repr(value)})
    return value


class Watchdog(Strict):
    """Opt-in hardware watchdog: a Talos WatchdogTimerConfig on /dev/watchdog0 (check that the
    device exists on the node first: README, Talos on Raspberry Pis)."""

    timeout: Annotated[str, AfterValidator(_watchdog_timeout)] = "5m"


def _watchdog_flag(value: Any) -> Any:
    """`watchdog: true` is the default timeout, `false` none, or a mapping `{timeout: 2m}`."""
    if value is True:
        return {}
    if value is False or value is None or isinstance(value, dict):
        return None if value is False else value
    raise PydanticCustomError(
        "watchdog",
        "{value} is not true, false or a mapping with timeout (e.g. watchdog: true)",
        {"value": repr(value)},
    )


class OsImage(Strict):
    """A Raspberry Pi OS image to flash: where it comes from and its sha256."""

    url: str
    sha256: Sha256 | None = None  # of the file as downloaded (the `.sha256` next to the URL)
    extract_sha256: Sha256 | None = None  # of the decompressed image (rpi-imager's extract_sha256)


class Wifi(Strict):
    """Raspberry Pi OS Wi-Fi, as rpi-imager offers it. The PSK is never in the inventory: it is
    the secret named `psk_secret` (config/secrets.sops.yaml or the environment)."""

    ssid: Annotated[str, Field(min_length=1, max_length=32)]
    psk_secret: str = "raspios.wifi_psk"
    country: Annotated[str, _check(re.compile(r"^[A-Z]{2}$"), "an ISO 3166 country code", "DE")]
    hidden: bool = False


class Raspios(Strict):
    """First-boot settings of Raspberry Pi OS nodes (top-level `raspios:`, overridable per node
    in `nodes.N.raspios`). All optional: unset means the image's own default."""

    timezone: str | None = None  # e.g. Europe/Berlin
    locale: str | None = None  # e.g. en_GB.UTF-8
    keyboard: str | None = None  # XKB layout, e.g. de or us
    wifi: Wifi | None = None
    dhcp: bool | None = None  # True: eth0 by DHCP instead of the inventory's static address

    def over(self, base: Raspios) -> Raspios:
        """This node's settings on top of the inventory defaults (unset keys inherit)."""
        mine = self.model_dump(exclude_unset=True, exclude_none=True)
        return base.model_copy(update={k: getattr(self, k) for k in mine})


class DiskSelector(Strict):
    """A disk by what it is, not by the name the kernel gave it this boot. Values are glob
    patterns matched against Talos's Disk resource (`talosctl get disks`), as Talos matches
    `machine.install.diskSelector` (v1alpha1_provider.go, InstallConfig.DiskMatchExpression)."""

    serial: str | None = None
    wwid: str | None = None
    model: str | None = None

    @model_validator(mode="after")
    def _one_at_least(self) -> DiskSelector:
        if not (self.serial or self.wwid or self.model):
            raise PydanticCustomError(
                "empty_selector", "give serial, wwid or model (see `inv talos.discover`)"
            )
        return self


class VmSpec(Strict):
    host: str
    vmid: Annotated[int, Field(ge=100, le=999_999_999)]
    cores: Annotated[int, Field(ge=1, le=128)] = 2
    memory_mib: Annotated[int, Field(ge=512)] = 4096
    disk_gib: Annotated[int, Field(ge=8)] = 32
    storage: str = "local-lvm"
    bridge: str = "vmbr0"
    vlan: Annotated[int, Field(ge=1, le=4094)] | None = None  # net0 tag=
    # sha256 of the Talos ISO, when known: download-url then verifies it on the host.
    iso_sha256: Sha256 | None = None


class Node(Strict):
    hostname: Hostname
    ip: ipaddress.IPv4Address
    mac: Mac
    role: Role
    platform: Platform
    os: OS
    model: str = ""
    install_disk: str = "/dev/sda"
    # Talos installs to the disk this selects (it wins over install_disk when both are set).
    install_disk_selector: DiskSelector | None = None
    # Talos: put the EPHEMERAL volume (/var: containerd, logs, /var/lib/longhorn) on this disk
    # (a path such as /dev/nvme0n1, or a selector), e.g. a Pi 5's NVMe (README "Raspberry Pis").
    ephemeral_disk: str | DiskSelector | None = None
    schematic: Schematic | None = None
    image: OsImage | None = None
    user: str = "pi"
    ssh_port: Annotated[int, Field(ge=1, le=65535)] = 22
    authorized_keys: list[str] = Field(default_factory=list)
    vm: VmSpec | None = None
    # Talos: does this node carry Longhorn volumes (iscsi-tools + util-linux-tools extensions,
    # the /var/lib/longhorn kubelet mount)? Unset: every Talos worker does, control planes don't.
    longhorn: bool | None = None
    raspios: Raspios | None = None  # per-node override of the top-level `raspios:`
    # Talos: arm the hardware watchdog (WatchdogTimerConfig). Off unless set: never via the
    # Pi firmware's config.txt (talos/schematic.py says why).
    watchdog: Annotated[Watchdog | None, BeforeValidator(_watchdog_flag)] = None

    @property
    def is_pi(self) -> bool:
        return self.platform in PI_PLATFORMS

    @property
    def carries_volumes(self) -> bool:
        if self.os != "talos":
            return False
        return self.longhorn if self.longhorn is not None else self.role == "worker"


class Cluster(Strict):
    name: Hostname
    talos_version: TalosVersion
    kubernetes_version: K8sVersion
    endpoint: str
    vip: ipaddress.IPv4Address
    node_cidr: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    dns: list[ipaddress.IPv4Address] = Field(min_length=1)
    ntp: list[str] = Field(default_factory=lambda: ["time.cloudflare.com"])
    pod_cidr: ipaddress.IPv4Network
    service_cidr: ipaddress.IPv4Network
    image_factory: str = "https://factory.talos.dev"
    installer_registry: str = "factory.talos.dev"
    talosconfig: str = "clusterconfig/talosconfig"
    kubeconfig: str = "clusterconfig/kubeconfig"
    extensions: list[str] = Field(default_factory=list)
    # Enforce NetworkPolicies: Talos >= 1.13 deploys kube-network-policies beside its Flannel
    # (cluster.network.cni.flannel.kubeNetworkPoliciesEnabled). Flannel alone ignores them, and
    # the tree's default-deny and allow policies (cluster/base/network-policies) mean nothing.
    network_policies: bool = True

    @model_validator(mode="after")
    def _policies_need_talos_1_13(self) -> Cluster:
        if self.network_policies and int(self.talos_version.split(".")[1]) < 13:
            raise PydanticCustomError(
                "talos_version",
                "network_policies: true needs Talos v1.13 or newer (talos_version is "
                "{version}): upgrade, or set cluster.network_policies: false",
                {"version": self.talos_version},
            )
        return self


class Ssh(Strict):
    known_hosts: str = "config/known_hosts"
    key_file: str = "~/.ssh/id_ed25519"
    connect_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    command_timeout_s: Annotated[float, Field(gt=0)] = 300.0
    parallel: Annotated[int, Field(ge=1, le=64)] = 6
    # Public keys `pi.flash` installs for the Pi OS user on first boot (plus nodes.N.authorized_keys).
    authorized_keys: list[str] = Field(default_factory=list)


class ProxmoxHost(Strict):
    api_url: str
    node: str
    token_id: Annotated[
        str,
        _check(
            re.compile(r"^[^@!\s]+@[^@!\s]+![A-Za-z][A-Za-z0-9._-]+$"),
            "an API token id",
            "domum@pve!automation",
        ),
    ]
    verify_tls: bool = True
    ca_file: str | None = None
    model: str = ""
    storages: dict[str, str] = Field(default_factory=dict)


class Nas(Strict):
    hostname: Hostname
    host: ipaddress.IPv4Address
    user: str = "root"
    ssh_port: Annotated[int, Field(ge=1, le=65535)] = 22
    shares: dict[str, str] = Field(default_factory=dict)


# restic's --keep-within: number+unit pairs, units y m d h (restic 0.18 refuses "14days", "14",
# "1.5d", "14D" with exit 1: tried against the real binary).
_RESTIC_DURATION = re.compile(r"^(?:\d+[ymdh])+$")


def _restic_duration(value: str) -> str:
    if not _RESTIC_DURATION.match(value) or not any(c in "123456789" for c in value):
        raise PydanticCustomError(
            "format",
            "{value} is not a restic duration: number+unit pairs, units y (years), m (months), "
            "d (days), h (hours), not all zero (e.g. 14d, 2y5m7d3h)",
            {"value": repr(value)},
        )
    return value


ResticDuration = Annotated[str, BeforeValidator(_as_text), AfterValidator(_restic_duration)]
# A comma would split restic's `--tag job=<name>` into two tags (one job's forget could then
# match another job's snapshots); the name is also a file name under state_dir.
_JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
JobName = Annotated[
    str, _check(_JOB_NAME, "a job name: ^[a-z0-9][a-z0-9_-]*$ (no comma, no capitals)", "pis")
]


class Retention(Strict):
    keep_last: Annotated[int, Field(ge=0)] = 0
    keep_hourly: Annotated[int, Field(ge=0)] = 0
    keep_daily: Annotated[int, Field(ge=0)] = 7
    keep_weekly: Annotated[int, Field(ge=0)] = 4
    keep_monthly: Annotated[int, Field(ge=0)] = 6
    keep_yearly: Annotated[int, Field(ge=0)] = 0
    # restic duration, e.g. "14d" (relative to the newest snapshot)
    keep_within: ResticDuration | None = None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def _duration_s(value: Any) -> Any:
    """`7200`, `"90m"`, `"2h"`, `"1d"` -> seconds (float); anything else is left to fail."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return value


Duration = Annotated[float, BeforeValidator(_duration_s), Field(gt=0)]


# restic prune --max-unused: "unlimited", a percentage (5%, 5.5%) or a whole size with an
# optional k/m/g/t suffix; what restic 0.18's `prune --max-unused` accepts (tried: 1.5G, 10GiB
# and words are refused by restic)
MaxUnused = Annotated[
    str, Field(pattern=r"^(unlimited|\d+(\.\d+)?%|\d+[kKmMgGtT]?)$", min_length=1)
]


class BackupTarget(Strict):
    type: Literal["restic", "rsync", "pve-storage"]
    repository: str
    # restic targets that get this one's complete snapshots by `restic copy` after each job's
    # backup here (3-2-1: the off-site copy of the NAS repository, not a second backup)
    copy_to: list[str] = Field(default_factory=list)


HookArg = Annotated[str, Field(min_length=1)]


class BackupJob(Strict):
    kind: Literal["etcd-snapshot", "vzdump", "files", "config", "nas", "postgres"]
    targets: list[str] = Field(min_length=1)
    enabled: bool = True
    timeout: Duration = 7200.0  # seconds, or "2h"/"90m": a hung job is killed at this deadline
    hosts: list[int] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)
    shares: list[str] = Field(default_factory=list)  # kind nas: names under nas.shares
    # files/nas: run the remote rsync as `sudo -n rsync`, so a login like `pi` can read /etc
    sudo: bool = False
    vmids: list[int] = Field(default_factory=list)
    # kind postgres: the CloudNativePG Cluster whose primary is dumped (cluster/apps/databases)
    cnpg_cluster: str = "postgres"
    namespace: str = "databases"
    schedule: str = "0 3 * * *"
    retention: Retention | None = None
    # kind nas: where Domum keeps its pinned restic on the NAS (relative: under the NAS
    # login's home; see backup/producers/nas_remote.py for why not /boot/config)
    restic_path: str | None = None
    # kind nas: where backup.drill restores on the NAS (default: beside the repository there;
    # see backup/recovery/nas_drill.py)
    drill_dir: str | None = None
    # Guards (issue 16 #4), checked on the staged copy before restic runs: an unmounted disk
    # or a stopped Unraid array looks like a source that lost its files. On by default and
    # conservative: at least 1 file, and at most half the files of the last complete run may
    # go at once (a real clean-up that large is rare and worth a look; an empty mount point
    # loses ~100 %). min_files 0 or max_shrink_percent 100 turns a guard off.
    min_files: Annotated[int, Field(ge=0)] = 1
    max_shrink_percent: Annotated[float, Field(ge=0, le=100)] = 50.0
    # Hooks (restic kinds): one argv each, run on the admin machine, never through a shell
    # (write `[sh, -c, "..."]` for one). `before` exit 75 skips the job softly (borgmatic's
    # soft failure); `on_error` gets DOMUM_JOB, DOMUM_STATUS, DOMUM_ERROR.
    before: list[HookArg] = Field(default_factory=list)
    after: list[HookArg] = Field(default_factory=list)
    on_error: list[HookArg] = Field(default_factory=list)
    # Push monitors pinged per run; their URLs are secrets: backup.monitor.<job>.<service>
    monitor: list[Literal["healthchecks", "ntfy", "uptime_kuma"]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _hooks_need_restic(self) -> BackupJob:
        if self.kind == "vzdump" and (self.before or self.after or self.on_error):
            raise PydanticCustomError(
                "hooks", "before/after/on_error hooks are for restic kinds, not vzdump"
            )
        return self


class Backup(Strict):
    state_dir: str = "/var/lib/domum"
    log_file: str = "/var/log/domum/backup.log"
    # backup.snapshot rotates the log at its start once it reached log_max_bytes, keeping
    # log_keep older files (backup.log.1 .. backup.log.<log_keep>)
    log_max_bytes: Annotated[int, Field(ge=1024)] = 5 * 1024 * 1024
    log_keep: Annotated[int, Field(ge=0, le=100)] = 5
    metrics_dir: str = "/var/lib/node_exporter/textfile_collector"
    retention: Retention = Field(default_factory=Retention)
    targets: dict[str, BackupTarget] = Field(default_factory=dict)
    jobs: dict[JobName, BackupJob] = Field(default_factory=dict)
    # The longest Domum waits for a restic repository lock another client holds (restic
    # --retry-lock); each command waits at most its own default (backup.restic.LOCK_WAIT_S).
    lock_wait: Duration | None = None
    # `backup.prune --reclaim` (weekly): restic prune --max-unused; restic's own default 5%
    prune_max_unused: MaxUnused = "5%"


class Flux(Strict):
    provider: Literal["github", "gitlab", "gitea"] = "github"
    owner: str
    repository: str
    branch: str = "main"
    path: str = "cluster"
    personal: bool = True


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@([a-z0-9-]+\.)+[a-z]{2,63}$")


def _timezone(value: str) -> str:
    """An IANA zone name, as Home Assistant, Grafana and CronJobs take it."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "format",
            "{value} is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)",
            {"value": repr(value)},
        ) from None
    return value


def _address_range(value: str) -> str:
    """MetalLB's own forms: `first-last` or a CIDR."""
    try:
        if "-" in value:
            first, last = (ipaddress.IPv4Address(p.strip()) for p in value.split("-", 1))
            if first > last:
                raise ValueError
        else:
            ipaddress.IPv4Network(value)
    except ValueError:
        raise PydanticCustomError(
            "format",
            "{value} is not an address range (e.g. 10.0.10.200-10.0.10.229 or 10.0.10.192/27)",
            {"value": repr(value)},
        ) from None
    return value


Domain = Annotated[
    str, AfterValidator(str.lower), _check(_DOMAIN, "a DNS domain", "home.example.com")
]
Email = Annotated[str, _check(_EMAIL, "an email address", "admin@example.com")]
TimeZone = Annotated[str, AfterValidator(_timezone)]
AddressRange = Annotated[str, AfterValidator(_address_range)]
# host:port of a scrape target (an address or a DNS name, as Prometheus takes it)
HostPort = Annotated[
    str,
    _check(
        re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5}$"),
        "host:port",
        "10.0.10.5:9100",
    ),
]


class LoadBalancer(Strict):
    """MetalLB's pool on the node LAN, and the fixed addresses of the two LAN-facing services."""

    addresses: AddressRange
    ingress_ip: ipaddress.IPv4Address  # Traefik (every web UI)
    dns_ip: ipaddress.IPv4Address  # Pi-hole (what DHCP hands out as DNS)

    def hosts(self) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
        """First and last address of the pool."""
        if "-" in self.addresses:
            first, last = (ipaddress.IPv4Address(p.strip()) for p in self.addresses.split("-", 1))
            return first, last
        net = ipaddress.IPv4Network(self.addresses)
        return net.network_address, net.broadcast_address


class Site(Strict):
    """What the GitOps tree in cluster/ needs, rendered into its `cluster-settings` ConfigMap."""

    domain: Domain  # apps are <app>.<domain>; a Cloudflare zone for ACME DNS-01
    acme_email: Email
    timezone: TimeZone = "UTC"
    metallb: LoadBalancer
    # NAS exports (paths on nas.host, inside one of nas.shares):
    longhorn_backup_path: str  # Longhorn's NFS backup target
    nfs_bulk_path: str  # csi-driver-nfs StorageClass for bulk data (media, documents)
    # node-exporter on the machine that runs `inv backup.*` (its textfile collector reads
    # backup.metrics_dir); Prometheus scrapes it so the DomumBackup* alerts see the metrics.
    admin_node_exporter: HostPort | None = None

    @property
    def metallb_addresses(self) -> str:
        """The pool as one string, as `inv flux.validate` compares it with the tree."""
        return self.metallb.addresses


# --- LXC containers (`containers:`; their cross-field checks are in containers.py) ---------

# pve-container's `ostemplate` for a create: a vztmpl volume (PVE::Storage content type).
_TEMPLATE = re.compile(r"^[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]:vztmpl/\S+$")
Template = Annotated[
    str,
    _check(
        _TEMPLATE,
        "a container template volume",
        "local:vztmpl/debian-13-standard_13.1-2_amd64.tar.zst",
    ),
]


class CtRootfs(Strict):
    storage: str = "local-lvm"
    size_gib: Annotated[int, Field(ge=1)] = 8


class CtNet(Strict):
    """net0 of the container: `ip` is `dhcp` or an address with its prefix (10.0.10.53/24)."""

    bridge: str = "vmbr0"
    ip: Literal["dhcp"] | ipaddress.IPv4Interface = "dhcp"
    gw: ipaddress.IPv4Address | None = None
    vlan: Annotated[int, Field(ge=1, le=4094)] | None = None
    mac: Mac | None = None


class ContainerSpec(Strict):
    host: str
    vmid: Annotated[int, Field(ge=100, le=999_999_999)]
    hostname: Hostname | None = None  # default: the inventory name
    template: Template | None = None  # what it was (or would be) created from
    cores: Annotated[int, Field(ge=1, le=128)] = 1
    memory_mib: Annotated[int, Field(ge=16)] = 512
    swap_mib: Annotated[int, Field(ge=0)] = 512
    rootfs: CtRootfs = Field(default_factory=CtRootfs)
    net: CtNet | None = None
    unprivileged: bool = True
    description: str = ""


class Inventory(Strict):
    cluster: Cluster
    ssh: Ssh = Field(default_factory=Ssh)
    nodes: dict[int, Node] = Field(min_length=1)
    proxmox: dict[str, ProxmoxHost] = Field(default_factory=dict)
    nas: Nas | None = None
    backup: Backup = Field(default_factory=Backup)
    flux: Flux
    raspios: Raspios = Field(default_factory=Raspios)
    site: Site | None = None  # needed by the GitOps tree (inv flux.render-settings)
    # LXC containers on the Proxmox hosts, by name (inventory/containers.py)
    containers: dict[str, ContainerSpec] = Field(default_factory=dict)

    def node(self, node_id: int | str) -> Node:
        try:
            return self.nodes[int(node_id)]
        except (KeyError, ValueError):
            valid = ", ".join(str(i) for i in sorted(self.nodes))
            from ..errors import ConfigError

            raise ConfigError(f"--node {node_id}: no such node; valid ids: {valid}") from None

    @property
    def controlplanes(self) -> dict[int, Node]:
        return {i: n for i, n in sorted(self.nodes.items()) if n.role == "controlplane"}

    @property
    def talos_nodes(self) -> dict[int, Node]:
        return {i: n for i, n in sorted(self.nodes.items()) if n.os == "talos"}

    def raspios_for(self, node: Node) -> Raspios:
        """The effective Raspberry Pi OS first-boot settings of one node."""
        return node.raspios.over(self.raspios) if node.raspios else self.raspios

    @property
    def pis(self) -> dict[int, Node]:
        return {i: n for i, n in sorted(self.nodes.items()) if n.is_pi}
