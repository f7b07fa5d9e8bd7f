"""domum_tasks.pve against a real fakepve over HTTPS, with TLS verification on (fakepve's CA)."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from domum_tasks import pve
from domum_tasks.errors import ConfigError, PveError
from domum_tasks.plan import PveCall
from tests.fixtures.pve_sim import PveSim

pytestmark = pytest.mark.integration


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode()).items()}


def test_to_pve_sends_booleans_as_1_0_and_drops_none() -> None:
    assert pve.to_pve({"full": True, "start": False, "name": "a", "pool": None}) == {
        "full": 1,
        "start": 0,
        "name": "a",
    }


def test_booleans_reach_the_server_as_1_and_0(pve_sim: PveSim) -> None:
    pve_sim.add_inventory_vm(96, status="running")
    client = pve.client(pve_sim.inventory(), "pve1")
    upid = client.call(
        "POST", "/nodes/pve1/qemu/196/snapshot", {"snapname": "pre-upgrade", "vmstate": True}
    )
    assert client.wait_task(upid)["exitstatus"] == "OK"
    method, path, body = pve_sim.pve.requests[0]
    assert (method, path) == ("POST", "/api2/json/nodes/pve1/qemu/196/snapshot")
    assert _form(body) == {"snapname": "pre-upgrade", "vmstate": "1"}
    assert "pre-upgrade" in pve_sim.pve.vm(196).snapshots


def test_token_auth_and_tls_verification(pve_sim: PveSim) -> None:
    client = pve.client(pve_sim.inventory(), "pve1")
    assert client.get("/version")["repoid"] == "fakepve"
    # The token, not a ticket: proxmoxer made no /access/ticket request.
    assert all(path != "/api2/json/access/ticket" for _m, path, _b in pve_sim.pve.requests)


def test_nextid_is_an_int(pve_sim: PveSim) -> None:
    pve_sim.add_inventory_vm(96)
    nextid = pve.client(pve_sim.inventory(), "pve1").nextid()
    assert isinstance(nextid, int) and nextid >= 100 and nextid != 196


def test_wrong_token_gives_one_clean_line(pve_sim: PveSim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pve.env_var("pve1"), "wrong-secret-value")
    with pytest.raises(PveError) as err:
        pve.client(pve_sim.inventory(), "pve1").get("/cluster/resources", type="vm")
    assert err.value.message == "pve1: GET /cluster/resources: 401 authentication failure"
    assert "DOMUM_PROXMOX_PVE1_TOKEN_SECRET" in err.value.hint
    assert "wrong-secret-value" not in str(err.value)


def test_unknown_ca_fails_tls_verification(pve_sim: PveSim, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fakepve.certs import make_cert

    other_ca = make_cert(str(tmp_path), name="other", hosts=("127.0.0.10",))[0]
    host = pve_sim.inventory().proxmox["pve1"].model_copy(update={"ca_file": other_ca})
    with pytest.raises(pve.PveUnavailable, match="TLS verification failed"):
        pve.PveClient("pve1", host, pve_sim.secret).get("/version")


@pytest.mark.contract_exempt("sends an invalid memory value on purpose")
def test_bad_parameter_names_the_field(pve_sim: PveSim) -> None:
    client = pve.client(pve_sim.inventory(), "pve1")
    with pytest.raises(PveError) as err:
        client.call("POST", "/nodes/pve1/qemu", {"vmid": 300, "memory": "lots"})
    assert err.value.message.startswith("pve1: POST /nodes/pve1/qemu: 400 Parameter verification")
    assert "memory:" in err.value.message
    assert "\n" not in err.value.message


def test_failed_task_raises_with_log_tail(pve_sim: PveSim) -> None:
    vm = pve_sim.add_inventory_vm(96, status="stopped")
    vm.start_error = "storage 'local-lvm' does not exist"
    step = PveCall("POST", "/nodes/pve1/qemu/196/status/start", {}, wait_task=True)
    with pytest.raises(PveError) as err:
        pve.run_step(pve_sim.inventory(), step)
    text = str(err.value)
    assert "task qmstart 196 on pve1 failed" in text
    assert "storage 'local-lvm' does not exist" in text
    assert "| TASK ERROR:" in text


def test_task_timeout_raises(pve_sim: PveSim) -> None:
    vm = pve_sim.add_inventory_vm(96, status="stopped")
    pve_sim.pve.time_scale = 1.0
    vm.start_secs = 60  # PVE seconds, now real seconds: far past our deadline
    client = pve.client(pve_sim.inventory(), "pve1")
    upid = client.call("POST", "/nodes/pve1/qemu/196/status/start")
    with pytest.raises(PveError, match=r"still running after 0\.3s"):
        client.wait_task(upid, deadline_s=0.3, interval_s=0.1)


def test_run_step_waits_for_the_task(pve_sim: PveSim) -> None:
    pve_sim.add_inventory_vm(96, status="stopped")
    step = PveCall("POST", "/nodes/pve1/qemu/196/status/start", {}, wait_task=True)
    result = pve.run_step(pve_sim.inventory(), step)
    assert result.ok and result.value["exitstatus"] == "OK"
    assert pve_sim.pve.vm(196).status == "running"


def test_not_a_upid_is_refused(pve_sim: PveSim) -> None:
    with pytest.raises(PveError, match="not a task id"):
        pve.client(pve_sim.inventory(), "pve1").wait_task("UPID:root@pam:done")


def test_missing_secret_is_unavailable(pve_sim: PveSim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pve.env_var("pve1"))
    monkeypatch.setenv("DOMUM_SECRETS_FILE", str(pve_sim.inventory_path.parent / "absent.yaml"))
    with pytest.raises(pve.PveUnavailable, match="no API token secret for Proxmox host 'pve1'"):
        pve.client(pve_sim.inventory(), "pve1")


def test_host_for_path() -> None:
    from domum_tasks.inventory import loader as inventory

    inv = inventory.load()
    assert pve.host_for_path(inv, "/nodes/pve1/qemu") == "pve1"
    assert pve.host_for_path(inv, "/cluster/resources") == "pve1"
    two = inv.model_copy(deep=True)
    two.proxmox["pve2"] = two.proxmox["pve1"].model_copy(update={"node": "pve2"})
    assert pve.host_for_path(two, "/nodes/pve2/qemu/1") == "pve2"
    with pytest.raises(ConfigError, match="cannot tell which Proxmox host"):
        pve.host_for_path(two, "/cluster/resources")


def test_executor_runs_pve_steps_through_the_facade(pve_sim: PveSim) -> None:
    from domum_tasks.plan import Plan
    from domum_tasks.taskutil import executor

    pve_sim.add_inventory_vm(96, status="stopped")
    inv = pve_sim.inventory()
    plan = Plan("start", [PveCall("POST", "/nodes/pve1/qemu/196/status/start", {}, wait_task=True)])
    [result] = executor(inventory=inv).execute(plan)
    assert result.value["exitstatus"] == "OK" and result.value["type"] == "qmstart"
    assert pve_sim.sent == [
        ("POST", "/nodes/pve1/qemu/196/status/start", {}),
        ("GET", f"/nodes/pve1/tasks/{result.value['upid']}/status", {}),
    ]


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
def test_verify_tls_false_works_but_warns(
    pve_sim: PveSim, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = pve_sim.inventory()
    inv.proxmox["pve1"] = inv.proxmox["pve1"].model_copy(
        update={"verify_tls": False, "ca_file": None}
    )
    session = pve.Session(inv)  # one run: one client per host, one warning
    assert session.client("pve1").get("/version")["repoid"] == "fakepve"
    session.client(path="/nodes/pve1/qemu").get("/version")
    assert capsys.readouterr().err.count("proxmox.pve1.verify_tls is false") == 1
    pve.Session(inv).client("pve1")  # the next run says it again
    assert capsys.readouterr().err.count("proxmox.pve1.verify_tls is false") == 1
