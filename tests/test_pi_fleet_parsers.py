"""Pure parsers of domum_tasks.pi.facts and the pure planners of fleet_plan, as tables."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from domum_tasks.errors import ConfigError
from domum_tasks.inventory import loader as inventory
from domum_tasks.pi.fleet import facts
from domum_tasks.pi.fleet import plan as fleet_plan
from domum_tasks.plan import Fanout, Plan, Ssh, Wait, Write, substeps


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("0x0", []),
        ("0x1", ["under-voltage now"]),
        ("0x2", ["arm frequency capped now"]),
        ("0x4", ["throttled now"]),
        ("0x8", ["soft temperature limit now"]),
        ("0x10000", ["under-voltage ever"]),
        ("0x20000", ["arm frequency capped ever"]),
        ("0x40000", ["throttled ever"]),
        ("0x80000", ["soft temperature limit ever"]),
        ("0x50000", ["under-voltage ever", "throttled ever"]),
        ("0x50005", ["under-voltage now", "throttled now", "under-voltage ever", "throttled ever"]),
        ("0xe0000", ["arm frequency capped ever", "throttled ever", "soft temperature limit ever"]),
        (0xF000F, [w for _, w in facts.THROTTLE_BITS]),
    ],
)
def test_decode_throttled(raw: str | int, words: list[str]) -> None:
    assert facts.decode_throttled(raw) == words


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("throttled=0x50005", "0x50005"),
        ("throttled=0x0", "0x0"),
        ("throttled=0xE0000", "0xe0000"),
        ("VCHI initialization failed", None),
        ("", None),
    ],
)
def test_parse_throttled(line: str, value: str | None) -> None:
    assert facts.parse_throttled(line) == value


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("temp=48.3'C", 48.3),
        ("temp=61'C", 61.0),
        ("temp=-5.0'C", -5.0),
        ("52612", 52.6),  # /sys/class/thermal millidegrees
        ("sh: 1: vcgencmd: not found", None),
        ("", None),
    ],
)
def test_parse_temp(line: str, value: float | None) -> None:
    assert facts.parse_temp(line) == value


@pytest.mark.parametrize(
    ("lines", "value"),
    [
        (["Filesystem 1024-blocks Used Available Capacity Mounted on",
          "/dev/mmcblk0p2 30358348 7012312 22038256 25% /"], (25, 30358348)),
        (["Filesystem 1024-blocks Used Available Capacity Mounted on",
          "/dev/root 1000 1000 0 100% /"], (100, 1000)),
        (["Filesystem 1024-blocks Used Available Capacity Mounted on"], None),
        ([], None),
    ],
)  # fmt: skip
def test_parse_df(lines: list[str], value: tuple[int, int] | None) -> None:
    assert facts.parse_df(lines) == value


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (59, "0h 0m"), (3700, "1h 1m"), (90061, "1d 1h"), (864000, "10d 0h")],
)
def test_human_uptime(seconds: float | None, text: str) -> None:
    assert facts.human_uptime(seconds) == text


PROBE_OUTPUT = """\
@@os
Raspbian GNU/Linux 12 (bookworm)
@@kernel
6.6.51+rpt-rpi-v8
@@uptime
93784.12 350000.00
@@load
0.15 0.20 0.31 1/250 4242
@@throttled
throttled=0x50000
@@temp
temp=55.5'C
@@disk
Filesystem     1024-blocks    Used Available Capacity Mounted on
/dev/mmcblk0p2    30358348 7012312  22038256      24% /
@@reboot
yes
linux-image-rpi-v8
raspi-firmware
"""


def test_parse_probe_full_output() -> None:
    f = facts.parse_probe(facts.PiFacts(93, "domum-dns", "raspios"), PROBE_OUTPUT)
    assert f.reachable
    assert f.os == "Raspbian GNU/Linux 12 (bookworm)"
    assert f.kernel == "6.6.51+rpt-rpi-v8"
    assert f.uptime_s == 93784.12
    assert f.load == (0.15, 0.20, 0.31)
    assert (f.temp_c, f.throttled) == (55.5, "0x50000")
    assert f.throttling == ["under-voltage ever", "throttled ever"]
    assert (f.disk_used_pct, f.disk_size_kib) == (24, 30358348)
    assert f.reboot_required is True
    assert f.reboot_packages == ["linux-image-rpi-v8", "raspi-firmware"]


def test_parse_probe_without_vcgencmd_leaves_unknowns() -> None:
    text = "@@os\n@@kernel\n6.1.0\n@@throttled\n@@temp\n@@disk\n@@reboot\nno\n"
    f = facts.parse_probe(facts.PiFacts(93, "x", "raspios"), text)
    assert (f.os, f.kernel, f.throttled, f.temp_c, f.reboot_required) == (
        None, "6.1.0", None, None, False)  # fmt: skip
    assert f.throttling == []


def test_the_probe_is_valid_shell_and_prints_every_section() -> None:
    out = subprocess.run(["sh", "-c", facts.PROBE], capture_output=True, text=True, check=True)
    assert list(facts.sections(out.stdout)) == [
        "os", "kernel", "uptime", "load", "throttled", "temp", "disk", "reboot"]  # fmt: skip


UPGRADE = """\
Reading package lists...
Calculating upgrade...
The following packages will be upgraded:
  libc-bin libc6 linux-image-rpi-v8
  openssl
4 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
Need to get 80.1 MB of archives.
"""


@pytest.mark.parametrize(
    ("text", "result"),
    [
        (UPGRADE, (4, ["libc-bin", "libc6", "linux-image-rpi-v8", "openssl"])),
        ("Calculating upgrade...\n0 upgraded, 0 newly installed, 0 to remove and 3 not upgraded.\n",
         (0, [])),
        ("", (0, [])),
    ],
)  # fmt: skip
def test_parse_upgrade(text: str, result: tuple[int, list[str]]) -> None:
    assert facts.parse_upgrade(text) == result


@pytest.mark.parametrize(
    ("text", "result"),
    [("yes\nlinux-image-rpi-v8\n", (True, ["linux-image-rpi-v8"])), ("no\n", (False, [])),
     ("", (False, []))],
)  # fmt: skip
def test_parse_reboot_check(text: str, result: tuple[bool, list[str]]) -> None:
    assert facts.parse_reboot_check(text) == result


TALOS_VERSION = """\
Client:
\tTag:         v1.13.9
\tSHA:         4b7d4c41
Server:
\tNODE:        127.0.0.90
\tTag:         v1.13.8
\tSHA:         4b7d4c41
"""


@pytest.mark.parametrize(
    ("text", "tag"),
    [(TALOS_VERSION, "v1.13.8"), ("Client:\n\tTag: v1.13.9\n", None), ("", None)],
)
def test_parse_talos_version(text: str, tag: str | None) -> None:
    assert facts.parse_talos_version(text) == tag


@pytest.mark.parametrize(
    ("doc", "result"),
    [
        ({"spec": {"stage": "running", "status": {"ready": True}}}, ("running", True)),
        ({"spec": {"stage": "booting", "status": {"ready": False}}}, ("booting", False)),
        ({"spec": {"stage": "running"}}, ("running", None)),
        ({"metadata": {}}, (None, None)),
    ],
)
def test_parse_machine_status(doc: dict[str, object], result: tuple[object, object]) -> None:
    # talosctl prints one indented JSON object per node; only the first counts.
    text = json.dumps(doc, indent=4) + "\n" + json.dumps({"spec": {"stage": "x"}}, indent=4)
    assert facts.parse_machine_status(text) == result
    assert facts.parse_machine_status("not json") == (None, None)


def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    blob = key.with_suffix(".pub").read_text().split()[1]
    listed = subprocess.run(["ssh-keygen", "-lf", str(key.with_suffix(".pub"))],
                            capture_output=True, text=True, check=True).stdout.split()[1]  # fmt: skip
    assert facts.fingerprint(blob) == listed


# --- planners --------------------------------------------------------------------------------


@pytest.fixture
def inv():  # type: ignore[no-untyped-def]
    return inventory.load_with_findings().inventory


def test_select(inv) -> None:  # type: ignore[no-untyped-def]
    assert fleet_plan.select(inv, None, True, task="t") == [93, 94, 95]
    assert fleet_plan.select(inv, "94", False, task="t") == [94]
    assert fleet_plan.select(inv, "nas", False, task="t", allow_nas=True) == ["nas"]
    cases = [
        (("94", True), {}, "give --node N or --all, not both"),
        ((None, False), {}, "give --node N or --all"),
        (("90", False), {}, "node 90 \\(domum-cp1\\) runs Talos, which has no SSH"),
        (("nas", False), {}, "--node nas is not supported here"),
        (("42", False), {}, "--node 42: no such node; valid ids: 90, 91"),
    ]
    for (node, all_), kw, msg in cases:
        with pytest.raises(ConfigError, match=msg):
            fleet_plan.select(inv, node, all_, task="t", **kw)


def lane_steps(plan: Plan) -> list[Ssh]:
    """The SSH steps of a fleet plan's one fan-out, lane after lane."""
    (fanout,) = plan.steps
    assert isinstance(fanout, Fanout)
    return [s for s in substeps(fanout) if isinstance(s, Ssh)]


def test_run_plan(inv) -> None:  # type: ignore[no-untyped-def]
    plan = fleet_plan.run_plan(inv, [93, "nas"], "uptime", 4)
    (fanout,) = plan.steps
    assert isinstance(fanout, Fanout) and fanout.parallel == 4
    assert [[s.to_dict() for s in lane] for lane in fanout.lanes] == [
        [{"kind": "ssh", "host": "127.0.0.93", "command": "uptime"}],
        [{"kind": "ssh", "host": "127.0.0.20", "command": "uptime"}],
    ]
    assert not any(s.check for s in lane_steps(plan))  # a failed host is data, not an error
    with pytest.raises(ConfigError, match="--cmd is empty"):
        fleet_plan.run_plan(inv, [93], "  ", 1)


def test_update_plan_uses_sudo_for_a_normal_user(inv) -> None:  # type: ignore[no-untyped-def]
    plan = fleet_plan.update_plan(inv, [93], 1)
    cmds = [s.command for s in lane_steps(plan)]
    assert len(cmds) == 3
    assert cmds[0].startswith("sudo -n env DEBIAN_FRONTEND=noninteractive apt-get -q -y")
    assert cmds[0].endswith(" update")
    assert cmds[1].endswith(" full-upgrade") and "--force-confold" in cmds[1]
    assert cmds[2] == facts.REBOOT_CHECK
    assert not plan.destructive


def test_update_plan_as_root_has_no_sudo(inv) -> None:  # type: ignore[no-untyped-def]
    root_inv = inv.model_copy(update={"nodes": {
        **inv.nodes, 94: inv.nodes[94].model_copy(update={"user": "root"})}})  # fmt: skip
    cmds = [s.command for s in lane_steps(fleet_plan.update_plan(root_inv, [94], 1))]
    assert cmds[0].startswith("env DEBIAN_FRONTEND=noninteractive apt-get")


def test_reboot_plan(inv) -> None:  # type: ignore[no-untyped-def]
    plan = fleet_plan.reboot_plan(inv, 95, "abc-123", wait=True, deadline_s=120)
    reboot, wait = plan.steps
    assert isinstance(reboot, Ssh) and reboot.host == "127.0.0.95"
    assert reboot.command == "sudo -n true && ({ sleep 1; sudo -n reboot; } >/dev/null 2>&1 &)"
    assert isinstance(wait, Wait) and wait.deadline_s == 120
    assert isinstance(wait.probe, Ssh) and '!= "abc-123"' in wait.probe.command
    assert plan.notes == []
    unknown = fleet_plan.reboot_plan(inv, 95, None, wait=True, deadline_s=60)
    assert unknown.steps[1].probe.command == "true"  # type: ignore[union-attr]
    assert "boot id unknown" in unknown.notes[0]
    assert len(fleet_plan.reboot_plan(inv, 95, None, wait=False, deadline_s=60).steps) == 1


KH = "127.0.0.93 ssh-ed25519 AAAAold93\n[127.0.0.94]:2222 ssh-ed25519 AAAA94\n"


@pytest.mark.parametrize(
    ("name", "ktype", "blob", "state", "expect_lines"),
    [
        ("127.0.0.93", "ssh-ed25519", "AAAAold93", "same", None),
        ("127.0.0.95", "ssh-ed25519", "AAAA95", "new",
         ["127.0.0.93 ssh-ed25519 AAAAold93", "[127.0.0.94]:2222 ssh-ed25519 AAAA94",
          "127.0.0.95 ssh-ed25519 AAAA95"]),
        ("127.0.0.93", "ssh-ed25519", "AAAAnew93", "changed",
         ["[127.0.0.94]:2222 ssh-ed25519 AAAA94", "127.0.0.93 ssh-ed25519 AAAAnew93"]),
        ("127.0.0.93", "ecdsa-sha2-nistp256", "AAAAec", "new",
         ["127.0.0.93 ssh-ed25519 AAAAold93", "[127.0.0.94]:2222 ssh-ed25519 AAAA94",
          "127.0.0.93 ecdsa-sha2-nistp256 AAAAec"]),
        # The port is part of the name: 127.0.0.94 on port 22 is another host entry.
        ("127.0.0.94", "ssh-ed25519", "AAAA94", "new", None),
    ],
)  # fmt: skip
def test_known_hosts_update(
    name: str, ktype: str, blob: str, state: str, expect_lines: list[str] | None
) -> None:
    text, got_state, _ = fleet_plan.known_hosts_update(KH, name, ktype, blob)
    assert got_state == state
    if state == "same":
        assert text == KH
    if expect_lines is not None:
        assert text.splitlines() == expect_lines


def test_enroll_plan_changed_key_is_destructive_and_says_so() -> None:
    plan = fleet_plan.enroll_plan("/kh", KH, "node-93", "127.0.0.93", "ssh-ed25519", "AAAAnew93",
                                  "SHA256:new", ["SHA256:old"])  # fmt: skip
    (step,) = plan.steps
    assert isinstance(step, Write) and step.destructive and step.path == "/kh"
    assert "replace 127.0.0.93 ssh-ed25519 SHA256:new" in step.desc
    assert any("CHANGED" in n and "SHA256:old" in n for n in plan.notes)
    same = fleet_plan.enroll_plan("/kh", KH, "node-93", "127.0.0.93", "ssh-ed25519", "AAAAold93",
                                  "SHA256:x")  # fmt: skip
    assert same.steps == [] and "nothing to do" in same.notes[-1]


def test_commands_for_real_pis_carry_no_test_hook(inv) -> None:  # type: ignore[no-untyped-def]
    plans = [
        fleet_plan.update_plan(inv, [93, 94], 2),
        fleet_plan.reboot_plan(inv, 93, "b00t", wait=True, deadline_s=60),
    ]
    commands = [facts.PROBE, facts.BOOT_ID_CMD] + [
        s.command for p in plans for step in p.steps for s in [step, *substeps(step)]
        if isinstance(s, Ssh)
    ]  # fmt: skip
    commands += [s.probe.command for p in plans for s in p.steps if isinstance(s, Wait) and s.probe]  # type: ignore[union-attr]
    assert not [c for c in commands if "DOMUM" in c or "FAKE" in c]
    assert "if [ -e /run/reboot-required ]" in facts.REBOOT_CHECK


def test_hosts_are_labelled_by_hostname(inv) -> None:  # type: ignore[no-untyped-def]
    plan = fleet_plan.update_plan(inv, [93], 1)
    assert plan.title == "apt full-upgrade on domum-dns"
    assert lane_steps(plan)[0].desc == "domum-dns: refresh package lists"
