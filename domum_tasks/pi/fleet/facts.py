"""Read-only probes of the Pi fleet, and the pure parsers of what they print.

Raspberry Pi OS nodes are probed over strict SSH with one command per host (one round trip);
Talos Pis have no SSH and are asked through talosctl with explicit --nodes/--endpoints/--talosconfig.
Every probe turns failures into a row (`PiFacts.error`), never an exception.

The commands name the real paths only: no test hook is ever sent to a Pi (the test sshd hosts map
/run/reboot-required and the boot id to their own files on their side, see tests/fixtures).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...inventory.model import Inventory, Node
    from ...ssh import HostResult, Target

REBOOT_REQUIRED = "/run/reboot-required"
BOOT_ID = "/proc/sys/kernel/random/boot_id"

# One shell command that prints every fact, each section after an @@marker line.
PROBE = "; ".join(
    [
        'echo @@os; (. /etc/os-release && echo "$PRETTY_NAME")',
        "echo @@kernel; uname -r",
        "echo @@uptime; cat /proc/uptime",
        "echo @@load; cat /proc/loadavg",
        "echo @@throttled; vcgencmd get_throttled 2>/dev/null",
        "echo @@temp; vcgencmd measure_temp 2>/dev/null || cat /sys/class/thermal/thermal_zone0/temp",
        "echo @@disk; df -P /",
        f"echo @@reboot; if [ -e {REBOOT_REQUIRED} ]; then echo yes; "
        f"cat {REBOOT_REQUIRED}.pkgs 2>/dev/null; else echo no; fi",
        "exit 0",
    ]
)
REBOOT_CHECK = (
    f"if [ -e {REBOOT_REQUIRED} ]; then echo yes; cat {REBOOT_REQUIRED}.pkgs; else echo no; fi"
)
BOOT_ID_CMD = f"cat {BOOT_ID}"

# vcgencmd get_throttled bits (Raspberry Pi documentation): low bits now, high bits since boot.
THROTTLE_BITS: tuple[tuple[int, str], ...] = (
    (0, "under-voltage now"),
    (1, "arm frequency capped now"),
    (2, "throttled now"),
    (3, "soft temperature limit now"),
    (16, "under-voltage ever"),
    (17, "arm frequency capped ever"),
    (18, "throttled ever"),
    (19, "soft temperature limit ever"),
)


@dataclass
class PiFacts:
    """One row of `pi.status`; None means unknown."""

    node: int
    hostname: str
    os_family: str  # raspios | talos
    reachable: bool | None = None  # None: not asked (talosctl or talosconfig missing)
    os: str | None = None
    kernel: str | None = None
    uptime_s: float | None = None
    load: tuple[float, float, float] | None = None
    temp_c: float | None = None
    throttled: str | None = None  # raw hex, as vcgencmd prints it
    throttling: list[str] = field(default_factory=list)
    disk_used_pct: int | None = None
    disk_size_kib: int | None = None
    reboot_required: bool | None = None
    reboot_packages: list[str] = field(default_factory=list)
    ready: bool | None = None  # Talos only
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- pure parsers ----------------------------------------------------------------------------


def sections(text: str) -> dict[str, list[str]]:
    """Split PROBE output at its @@markers."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("@@"):
            current = line[2:].strip()
            out[current] = []
        elif current:
            out[current].append(line)
    return out


def decode_throttled(value: int | str) -> list[str]:
    """`vcgencmd get_throttled` as words; [] when nothing is or was wrong."""
    bits = int(value, 0) if isinstance(value, str) else value
    return [word for bit, word in THROTTLE_BITS if bits & (1 << bit)]


def parse_throttled(line: str) -> str | None:
    match = re.search(r"throttled=(0x[0-9a-fA-F]+)", line)
    return match.group(1).lower() if match else None


def parse_temp(line: str) -> float | None:
    """`temp=48.3'C` from vcgencmd, or millidegrees from /sys/class/thermal."""
    line = line.strip()
    if match := re.fullmatch(r"temp=(-?\d+(?:\.\d+)?)'C", line):
        return float(match.group(1))
    if re.fullmatch(r"-?\d+", line):
        return round(int(line) / 1000, 1)
    return None


def parse_uptime(line: str) -> float | None:
    try:
        return float(line.split()[0])
    except (IndexError, ValueError):
        return None


def parse_load(line: str) -> tuple[float, float, float] | None:
    try:
        a, b, c = (float(x) for x in line.split()[:3])
    except ValueError:
        return None
    return (a, b, c)


def parse_df(lines: Sequence[str]) -> tuple[int, int] | None:
    """(used %, size KiB) from `df -P /`."""
    for line in lines[1:]:
        parts = line.split()
        if len(parts) >= 6 and parts[4].endswith("%") and parts[1].isdigit():
            return int(parts[4].rstrip("%")), int(parts[1])
    return None


def parse_probe(facts: PiFacts, text: str) -> PiFacts:
    s = sections(text)

    def first(name: str) -> str:
        return next((ln for ln in s.get(name, []) if ln.strip()), "")

    facts.reachable = True
    facts.os = first("os") or None
    facts.kernel = first("kernel") or None
    facts.uptime_s = parse_uptime(first("uptime"))
    facts.load = parse_load(first("load"))
    facts.temp_c = parse_temp(first("temp"))
    facts.throttled = parse_throttled(first("throttled"))
    facts.throttling = decode_throttled(facts.throttled) if facts.throttled else []
    if (df := parse_df(s.get("disk", []))) is not None:
        facts.disk_used_pct, facts.disk_size_kib = df
    reboot = [ln.strip() for ln in s.get("reboot", []) if ln.strip()]
    if reboot:
        facts.reboot_required = reboot[0] == "yes"
        facts.reboot_packages = reboot[1:]
    return facts


def parse_reboot_check(text: str) -> tuple[bool, list[str]]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (bool(lines) and lines[0] == "yes", lines[1:])


def parse_upgrade(text: str) -> tuple[int, list[str]]:
    """(packages upgraded, their names) from `apt-get full-upgrade` output."""
    count = 0
    if match := re.search(r"^(\d+) upgraded, \d+ newly installed", text, re.M):
        count = int(match.group(1))
    names: list[str] = []
    block = re.search(r"^The following packages will be upgraded:\n((?:  .*\n?)+)", text, re.M)
    if block:
        names = block.group(1).split()
    return count, names


def human_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days}d {hours}h" if days else f"{hours}h {mins}m"


def parse_talos_version(text: str) -> str | None:
    """The server's Tag from `talosctl version` (the first Tag after 'Server:')."""
    server = text.split("Server:", 1)
    if len(server) < 2:
        return None
    match = re.search(r"Tag:\s*(\S+)", server[1])
    return match.group(1) if match else None


def parse_machine_status(text: str) -> tuple[str | None, bool | None]:
    """(stage, ready) from `talosctl get machinestatus -o json` (first JSON object printed)."""
    try:
        doc, _ = json.JSONDecoder().raw_decode(text.strip())
    except json.JSONDecodeError:
        return None, None
    spec = doc.get("spec") if isinstance(doc, dict) else None
    if not isinstance(spec, dict):
        return None, None
    status = spec.get("status")
    if not isinstance(status, dict):
        status = {}
    ready = status.get("ready")
    stage = spec.get("stage")
    return (stage if isinstance(stage, str) else None), (ready if isinstance(ready, bool) else None)


def fingerprint(key_b64: str) -> str:
    """The SHA256 fingerprint as ssh-keygen -l prints it."""
    digest = hashlib.sha256(base64.b64decode(key_b64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


# --- probes (I/O) ----------------------------------------------------------------------------


def talos_argv(inv: Inventory, node: Node, *args: str) -> list[str]:
    """talosctl through talos/argv.py (explicit --nodes, --endpoints and --talosconfig, never
    the talosconfig's defaults), aimed at this one node."""
    from ...ssh import repo_path
    from ...talos.argv import talosctl

    ip = str(node.ip)
    cut = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
    words, flags = list(args[:cut]), args[cut:]
    config = str(repo_path(inv.cluster.talosconfig))
    return list(talosctl(inv, words, *flags, nodes=[ip], endpoints=[ip], talosconfig=config))


def probe_talos(inv: Inventory, node_id: int) -> PiFacts:
    from ...errors import CommandFailed
    from ...run import run_cmd
    from ...ssh import repo_path
    from ...tools import find_tool

    node = inv.nodes[node_id]
    facts = PiFacts(node_id, node.hostname, "talos", os="Talos")
    if find_tool("talosctl") is None:
        facts.error = "talosctl not found (inv tools.install)"
        return facts
    talosconfig = repo_path(inv.cluster.talosconfig)
    if not talosconfig.exists():
        facts.error = f"no talosconfig at {inv.cluster.talosconfig} (inv talos.genconfig)"
        return facts
    timeout = inv.ssh.connect_timeout_s + 5
    try:
        out = run_cmd(talos_argv(inv, node, "version"), timeout_s=timeout).stdout
        facts.reachable = True
        tag = parse_talos_version(out)
        facts.os = f"Talos {tag}" if tag else "Talos"
        ms = run_cmd(talos_argv(inv, node, "get", "machinestatus", "-o", "json"), timeout_s=timeout)
        stage, facts.ready = parse_machine_status(ms.stdout)
        state = [stage or "", {True: "ready", False: "not ready", None: ""}[facts.ready]]
        if any(state):
            facts.os += f" ({', '.join(x for x in state if x)})"
    except CommandFailed as exc:
        facts.reachable = facts.reachable or False  # `version` answered: up, `get` failed
        facts.error = str(exc).splitlines()[-1].strip(" |") or str(exc).splitlines()[0]
    return facts


def facts_from_ssh(inv: Inventory, result: HostResult) -> PiFacts:
    node_id = result.target.node_id
    assert node_id is not None
    facts = PiFacts(node_id, inv.nodes[node_id].hostname, "raspios")
    if result.ok:
        return parse_probe(facts, result.stdout)
    facts.reachable = result.status == "failed"  # it answered; the probe command failed
    facts.error = down_reason(result, node_id)
    return facts


def down_reason(result: HostResult, node_id: int) -> str:
    """Why a Pi is down, short (the row names the host already), with what to do about it."""
    if result.status == "unknown-key":
        return f"host key unknown: run `inv pi.enroll --node {node_id}`"
    if result.status == "changed-key":
        return f"host key CHANGED: verify, then `inv pi.enroll --node {node_id} --replace`"
    reason = result.reason()
    where = (
        f"{result.target.label} ({result.target.user}@{result.target.host}:{result.target.port}): "
    )
    return reason.removeprefix(where)


def probe_fleet(inv: Inventory, node_ids: Sequence[int]) -> list[PiFacts]:
    """Every requested Pi probed at once (SSH and talosctl alike), in node order."""
    import functools

    from ... import ssh

    def over_ssh(node_id: int) -> PiFacts:
        target = ssh.resolve(inv, node_id)
        result = ssh.run_on(inv, target, PROBE, timeout_s=inv.ssh.connect_timeout_s + 20)
        return facts_from_ssh(inv, result)

    jobs: list[Callable[[], PiFacts]] = [
        functools.partial(over_ssh, i)
        if inv.nodes[i].os == "raspios"
        else functools.partial(probe_talos, inv, i)
        for i in sorted(node_ids)
    ]
    return ssh.parallel(jobs, inv.ssh.parallel)


def boot_id(inv: Inventory, target: Target) -> str | None:
    from ... import ssh

    r = ssh.run_on(inv, target, BOOT_ID_CMD, timeout_s=inv.ssh.connect_timeout_s + 5)
    return r.stdout.strip() or None if r.ok else None


def fetch_host_key(host: str, port: int, timeout_s: float) -> tuple[str, str]:
    """(key type, base64 blob) the server offers, preferring ed25519. No authentication."""
    import socket

    import paramiko

    sock = socket.create_connection((host, port), timeout=timeout_s)
    transport = paramiko.Transport(sock)
    try:
        opts = transport.get_security_options()
        opts.key_types = ["ssh-ed25519", *(k for k in opts.key_types if k != "ssh-ed25519")]
        transport.start_client(timeout=timeout_s)
        key = transport.get_remote_server_key()
        return key.get_name(), key.get_base64()
    finally:
        transport.close()


def read_host_key(target: Target, timeout_s: float) -> tuple[str, str]:
    """fetch_host_key for a target; any failure is one RemoteError line naming the host."""
    from ...errors import RemoteError

    try:
        return fetch_host_key(target.host, target.port, timeout_s)
    except Exception as exc:  # socket and paramiko errors alike: one line, no traceback
        raise RemoteError(
            f"{target.label} ({target.host}:{target.port}): cannot read its host key: "
            + (str(exc) or type(exc).__name__)
        ) from None


def known_hosts_file(inv: Inventory) -> Path:
    from ...ssh import known_hosts_path

    return known_hosts_path(inv)
