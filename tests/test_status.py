"""`domum status` against the stand-ins: healthy -> exit 0; each part down in turn -> its row
says why and the exit is 1; bad input -> exit 2; a part that hangs costs one timeout.

The homelab is tests/status_lab.py's: talosctl/flux stand-ins, fakepve, real sshd Pis and a
local restic repository, all on loopback.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from invoke import Context
from invoke.exceptions import Exit

from domum_tasks.status import tasks as status_tasks
from tests.status_lab import Homelab, by_name, homelab, silent_listener, status  # noqa: F401

pytestmark = pytest.mark.integration


HEALTHY = {
    "talos": 6,  # 90, 91, 92, 96, 97, 98
    "etcd": 3,  # one row per control plane
    "proxmox": 4,  # pve1, VM 196, containers 210 and 211
    "pi": 3,  # the Raspberry Pi OS Pis 93-95
    "backup": 4,  # etcd, edge-pis, config -> a; pve-vms -> pve-nas
}


def test_all_healthy_is_exit_0_with_every_part(homelab: Homelab, capsys: Any) -> None:
    now = time.time()
    homelab.record("verify", "a", {"last_success": now - 7200, "last_result": "ok"})
    homelab.record("drill", "etcd", {"last_success": now - 3 * 86400, "ok": True})
    code, rows, message = status(capsys)
    assert (code, message) == (0, ""), [r for r in rows if not r["ok"]]
    parts = [r["part"] for r in rows]
    for part, n in HEALTHY.items():
        assert parts.count(part) == n, (part, parts)
    flux = by_name([r for r in rows if r["part"] == "flux"])
    assert "flux Kustomization flux-system/flux-system" in flux
    assert any(n.startswith("flux HelmRelease ") for n in flux)
    assert all(r["ok"] for r in rows)
    # the screen's order: parts in a fixed order, nodes in theirs
    assert parts == sorted(parts, key=["talos", "etcd", "flux", "proxmox", "pi", "backup"].index)
    rows_ = by_name(rows)
    cp3 = rows_["talos domum-cp3 (96)"]
    assert cp3["fields"]["version"] == "v1.13.9" and cp3["detail"] == "v1.13.9, running, ready"
    assert rows_["etcd domum-cp1 (90)"]["fields"]["members"] == [
        "domum-cp1", "domum-cp2", "domum-cp3"]  # fmt: skip
    assert rows_["proxmox qemu 196 domum-cp3"]["detail"].startswith("running on pve1")
    assert "48.3°C" in rows_["pi domum-dns (93)"]["detail"]
    etcd = rows_["backup etcd -> a"]["detail"]
    assert etcd.startswith("complete snapshot ") and etcd.endswith(
        "; verify 2.0h ago; drill 3.0d ago"
    )
    # status only reads: no talosctl/flux call that changes anything, no PVE write
    assert homelab.guests.sim.writes() == []
    assert {c[1] for c in homelab.cli.calls} <= {"version", "get", "etcd"}
    assert all(c[2] == "members" for c in homelab.cli.calls if c[1] == "etcd")


def test_a_missing_tool_is_a_failing_row(homelab: Homelab, capsys: Any) -> None:
    homelab.cli.remove("talosctl")
    homelab.cli.remove("flux")
    code, rows, _ = status(capsys)
    assert code == 1
    rows_ = by_name(rows)
    assert rows_["talos talosctl"]["detail"] == "talosctl not found: run `inv tools.install`"
    assert rows_["flux flux"]["detail"] == "flux not found: run `inv tools.install`"
    assert rows_["etcd talosctl"]["detail"] == rows_["talos talosctl"]["detail"]
    assert [r["part"] for r in rows].count("etcd") == 1  # not one row per control plane
    assert all(r["ok"] for r in rows if r["part"] in ("proxmox", "pi", "backup"))


def test_no_talosconfig_is_one_failing_row(homelab: Homelab, capsys: Any) -> None:
    homelab.data["cluster"]["talosconfig"] = "/nonexistent/talosconfig"
    homelab.save()
    code, rows, _ = status(capsys, only="talos,etcd,pi")
    assert code == 1
    why = "no talosconfig at /nonexistent/talosconfig: run `inv talos.genconfig`"
    assert [(r["part"], r["name"], r["ok"], r["detail"]) for r in rows if r["part"] != "pi"] == [
        ("talos", "talosconfig", False, why),
        ("etcd", "talosconfig", False, why),
    ]
    assert homelab.cli.calls == []


def test_parts_the_inventory_lacks_are_absent(homelab: Homelab, capsys: Any) -> None:
    data = homelab.data
    del data["proxmox"], data["containers"]
    cp3 = data["nodes"][96]
    del cp3["vm"]
    cp3["platform"] = "baremetal"
    data["backup"]["jobs"] = {}
    homelab.save()
    code, rows, _ = status(capsys)
    assert code == 0, [r for r in rows if not r["ok"]]
    assert {r["part"] for r in rows} == {"talos", "etcd", "flux", "pi"}


def test_only_and_bad_input(homelab: Homelab, capsys: Any) -> None:
    code, rows, _ = status(capsys, only="pi,etcd")
    assert code == 0 and {r["part"] for r in rows} == {"pi", "etcd"}
    for kw, words in (({"only": "pis"}, "--only pis: no such part; valid: talos, etcd"),
                      ({"timeout": "soon"}, "--timeout soon: 'soon' is not a number"),
                      ({"timeout": "pve=3"}, "--timeout pve=3: no part 'pve'"),
                      ({"timeout": "pi=0"}, "not a number of seconds above 0")):  # fmt: skip
        code, rows, message = status(capsys, **kw)
        assert code == 2 and rows == [] and words in message, (kw, message)


def test_the_table_shows_what_json_says(homelab: Homelab, capsys: Any) -> None:
    homelab.cli.set_state(unhealthy=["127.0.0.92"])
    code, rows, _ = status(capsys)
    with pytest.raises(Exit) as exc:
        status_tasks.status(Context())
    assert code == exc.value.code == 1
    out = capsys.readouterr().out
    assert "domum status" in out
    lines = [ln for ln in out.splitlines() if "│" in ln]
    for r in rows:
        cells = next(
            [c.strip() for c in ln.split("│")[1:-1]]
            for ln in lines
            if f"│ {r['name']} " in ln and ln.split("│")[1].strip() == r["part"]
        )
        assert cells[2] == ("ok" if r["ok"] else "error"), (r, cells)


def test_a_hanging_part_costs_one_timeout(homelab: Homelab, capsys: Any) -> None:
    """The PVE API and all three Pis accept connections and never answer. Serially that is
    four timeouts; in parallel about one (the bound below is generous, the structure is the
    test: every other row is there and healthy, the hanging ones say they timed out)."""
    with silent_listener("127.0.0.10") as port:
        homelab.data["proxmox"]["pve1"]["api_url"] = f"https://127.0.0.10:{port}/"
        homelab.save()
        with homelab.fleet.down(93), homelab.fleet.down(94), homelab.fleet.down(95):
            pis = [homelab.fleet.host(i) for i in (93, 94, 95)]
            with (
                silent_listener(pis[0].addr, pis[0].port),
                silent_listener(pis[1].addr, pis[1].port),
                silent_listener(pis[2].addr, pis[2].port),
            ):
                started = time.monotonic()
                code, rows, _ = status(capsys, timeout="proxmox=3,pi=3")
                took = time.monotonic() - started
    assert code == 1
    rows_ = by_name(rows)
    # PVE's client times out on its own (its read timeout is the probe's), or the runner does
    pve1 = rows_["proxmox host pve1"]["detail"]
    assert "no answer within 3s" in pve1 or "timed out after 3s" in pve1, pve1
    for name in ("domum-dns (93)", "domum-zigbee (94)", "domum-edge (95)"):
        detail = rows_[f"pi {name}"]["detail"]
        assert "no answer within 3s" in detail or "timed out" in detail, detail
    bad = sorted(n for n, r in rows_.items() if not r["ok"])
    assert bad == ["pi domum-dns (93)", "pi domum-edge (95)", "pi domum-zigbee (94)",
                   "proxmox host pve1"]  # fmt: skip
    assert {"talos", "etcd", "flux", "backup"} <= {r["part"] for r in rows}
    assert took < 4 * 3, f"{took:.1f}s: the four hanging probes ran one after another"
