"""The Talos rules (domum_tasks/talos/genconfig/rules/) against siderolabs/talos v1.13.9: every rule
cites its Go function, none comes from another version, and each is tested with the examples of
that function's own _test.go (named in each case). The stand-in's independent reading
(tests/fakes/talos_rules.py) must give the same answer on every example, so the two cannot drift.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import subprocess
from pathlib import Path
from typing import Any

import pytest

from domum_tasks.talos.genconfig import rules
from domum_tasks.talos.genconfig.rules import documents, v1alpha1

# the stand-in's module is a standalone script file (tests/fakes is not a package path for it)
_SPEC = importlib.util.spec_from_file_location(
    "stand_in_talos_rules", Path(__file__).parent / "fakes" / "talos_rules.py"
)
assert _SPEC is not None and _SPEC.loader is not None
stand_in = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(stand_in)

# --- the registry ------------------------------------------------------------------------------

HELPERS = {"doc_id", "machine_type"}  # functions of the rule modules that are not rules
# Rules Domum once had that v1.13.9 does not: ResolverConfig hostDNS/DoT/DoH/tlsServerName arrive
# in v1.14; the PTP-device rules exist in no Talos version.
NOT_IN_V1_13 = (
    "cannot be enabled when hostDNS",
    "resolveMemberNames",
    "tlsServerName",
    "DoT",
    "DoH",
)
NOT_IN_V1_13 += ("/dev/ptp", "PTP device")


def test_every_rule_cites_its_v1_13_9_function() -> None:
    assert (rules.UPSTREAM_REPO, rules.UPSTREAM_TAG) == ("siderolabs/talos", "v1.13.9")
    assert len(rules.RULES) >= 25
    for r in rules.RULES:
        assert r.file.startswith("machinery/") and r.file.endswith(".go"), r
        assert r.function and r.stage, r
    registered = {r.check for r in rules.RULES}
    for module in (documents, v1alpha1, rules):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__ and not name.startswith("_"):
                assert fn in registered or name in HELPERS or name == "validate", name


def test_no_rule_from_another_version() -> None:
    root = Path(rules.__file__).parent
    for path in root.glob("*.py"):
        text = path.read_text()
        for banned in NOT_IN_V1_13:
            assert banned not in text, (path.name, banned)
    # v1.13.9's ResolverConfigV1Alpha1 has no Validate (only V1Alpha1ConflictValidate)
    assert [r.stage for r in rules.KIND_RULES["ResolverConfig"]] == ["decode", "conflict"]


# --- the upstream examples -----------------------------------------------------------------------


def v1(kind: str = "controlplane", **machine: Any) -> dict[str, Any]:
    """A v1alpha1 document Talos accepts in metal mode (secrets included)."""
    ca = {"crt": "Zm9v", "key": "YmFy"} if kind == "controlplane" else {"crt": "Zm9v"}
    doc: dict[str, Any] = {
        "version": "v1alpha1",
        "machine": {"type": kind, "ca": ca, "install": {"disk": "/dev/vda"}},
        "cluster": {"controlPlane": {"endpoint": "https://127.0.0.1:6443"}},
    }
    doc["machine"].update(machine)
    return doc


def typed(kind: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1alpha1", "kind": kind, **fields}


ALIAS = 'mac(link.permanent_addr) == "00:1a:2b:3c:4d:5e"'
LABELS_6 = {  # v1alpha1_validation_test.go "NodeLabels"
    "/foo": "bar",
    "key": "value",
    "talos.dev/foo": "bar",
    "@!": "#$",
    "123@.dev/": "456",
    "a/b/c": "a" * 64,
}
# (test it comes from, documents, the problems Talos reports; [] = valid)
CASES: list[tuple[str, list[dict[str, Any]], list[str]]] = [
    # network/hostname_test.go TestHostnameConfigValidate
    ("hostname empty", [typed("HostnameConfig")], ["either 'auto' or 'hostname' must be set"]),
    (
        "hostname both set",
        [typed("HostnameConfig", hostname="example.org", auto="stable")],
        ["'auto' and 'hostname' cannot be set at the same time"],
    ),
    (
        "hostname invalid auto",
        [typed("HostnameConfig", auto="talos-addr")],
        ["invalid value for 'auto': talos-addr"],
    ),
    (
        "hostname too long",
        [typed("HostnameConfig", hostname="a" * 64)],
        [f'invalid hostname "{"a" * 64}"'],
    ),
    (
        "hostname too long fqdn label",
        [typed("HostnameConfig", hostname="a" * 64 + "." + "b" * 64)],
        [f'invalid hostname "{"a" * 64}"'],
    ),
    (
        "hostname invalid fqdn",
        [typed("HostnameConfig", hostname=".example.org")],
        ['invalid hostname ""'],
    ),
    (
        "hostname fqdn too long",
        [typed("HostnameConfig", hostname=("a" * 63 + ".") * 5)],
        ["fqdn is too long: 320"],
    ),
    ("hostname valid 1 (hostname only)", [typed("HostnameConfig", hostname="example.org")], []),
    ("hostname valid 2", [typed("HostnameConfig", auto="stable")], []),
    ("hostname valid 3", [typed("HostnameConfig", auto="off")], []),
    # network/hostname_test.go TestHostnameV1Alpha1Validate
    ("hostname conflict empty", [v1(), typed("HostnameConfig", auto="stable")], []),
    (
        "hostname conflict static",
        [v1(network={"hostname": "foo"}), typed("HostnameConfig", auto="stable")],
        ["static hostname is already set in v1alpha1 config"],
    ),
    (
        "hostname conflict stable",
        [v1(features={"stableHostname": True}), typed("HostnameConfig", auto="stable")],
        ["stable hostname is already set in v1alpha1 config"],
    ),
    # network/layer2_vip_test.go TestLayer2VIPValidate
    (
        "vip empty",
        [typed("Layer2VIPConfig", name="")],
        ["Layer2VIPConfig/: name must be specified", "Layer2VIPConfig/: link must be specified"],
    ),
    ("vip no link", [typed("Layer2VIPConfig", name="1.1.1.1")], ["link must be specified"]),
    (
        "vip invalid IP",
        [typed("Layer2VIPConfig", name="net4", link="net0")],
        ['name must be a valid IP address: ParseAddr("net4"): unable to parse IP'],
    ),
    ("vip valid", [typed("Layer2VIPConfig", name="fd00::1", link="net45")], []),
    # network/link_alias_test.go TestLinkAliasValidate
    (
        "alias empty",
        [typed("LinkAliasConfig", name="")],
        ["name must be specified", "link selector is required"],
    ),
    ("alias no selector", [typed("LinkAliasConfig", name="int0")], ["link selector is required"]),
    (
        "alias invalid selector",
        [typed("LinkAliasConfig", name="int0", selector={"match": "disk.size > 120"})],
        ["link selector is invalid: ERROR: <input>", "undeclared reference to 'disk'"],
    ),
    ("alias valid", [typed("LinkAliasConfig", name="int0", selector={"match": ALIAS})], []),
    (
        "alias valid pattern",
        [typed("LinkAliasConfig", name="net%d", selector={"match": "link.type == 1"})],
        [],
    ),
]
for _bad in ("net%02d", "net%d-port%d", "net%s"):
    CASES.append(
        (
            f"alias pattern {_bad}",
            [typed("LinkAliasConfig", name=_bad, selector={"match": "link.type == 1"})],
            [f'name "{_bad}" contains an invalid format verb, use %d suffix'],
        )
    )
CASES += [
    # network/link_test.go TestLinkValidate
    ("link empty", [typed("LinkConfig", name="")], ["name must be specified"]),
    (
        "link invalid addresses",
        [typed("LinkConfig", name="enp0s2", addresses=[{"address": ""}, {"address": "0.0.0.0/0"}])],
        ["address 0 must be specified", "address 1 must be a valid IP address"],
    ),
    (
        "link valid",
        [
            typed(
                "LinkConfig",
                name="enp0s2",
                mtu=9000,
                up=True,
                addresses=[{"address": "192.168.1.100/24"}, {"address": "fd00::1/64"}],
                routes=[{"gateway": "192.168.1.1"}],
            )
        ],
        [],
    ),
    # network/time_sync_test.go TestTimeSyncValidate, TestTimeSyncV1Alpha1Validate
    ("timesync empty", [typed("TimeSyncConfig")], []),
    (
        "timesync ntp and ptp",
        [
            typed(
                "TimeSyncConfig", ntp={"servers": ["pool.ntp.org"]}, ptp={"devices": ["/dev/ptp0"]}
            )
        ],
        ["only one of ntp or ptp configuration can be specified"],
    ),
    (
        "timesync negative boot timeout",
        [typed("TimeSyncConfig", bootTimeout="-1s")],
        ["bootTimeout cannot be negative"],
    ),
    (
        "timesync valid ntp",
        [typed("TimeSyncConfig", ntp={"servers": ["pool.ntp.org"]}, bootTimeout="1s")],
        [],
    ),
    (
        "timesync conflict servers",
        [v1(time={"servers": ["za.pool.ntp.org"]}), typed("TimeSyncConfig")],
        ["time servers cannot be specified in both v1alpha1 and new-style configuration"],
    ),
    (
        "timesync conflict boot timeout",
        [v1(time={"bootTimeout": "1s"}), typed("TimeSyncConfig")],
        ["boot timeout cannot be specified in both v1alpha1 and new-style configuration"],
    ),
    (
        "timesync conflict disabled",
        [v1(time={"disabled": True}), typed("TimeSyncConfig")],
        ["time sync cannot be disabled in both v1alpha1 and new-style configuration"],
    ),
    # network/resolver_test.go TestResolverV1Alpha1Validate (v1.13 has no ResolverConfig.Validate)
    ("resolver conflict empty", [v1(), typed("ResolverConfig")], []),
    (
        "resolver conflict nameservers",
        [v1(network={"nameservers": ["1.1.1.1"]}), typed("ResolverConfig")],
        [".machine.network.nameservers is already set in v1alpha1 config"],
    ),
    (
        "resolver conflict search domains",
        [v1(network={"searchDomains": ["example.com"]}), typed("ResolverConfig")],
        [".machine.network.searchDomains is already set in v1alpha1 config"],
    ),
    (
        "resolver conflict disableSearchDomain",
        [v1(network={"disableSearchDomain": True}), typed("ResolverConfig")],
        [".machine.network.disableSearchDomain is already set in v1alpha1 config"],
    ),
    # runtime/watchdog_timer_test.go TestWatchdogTimerValidate
    ("watchdog empty", [typed("WatchdogTimerConfig")], ["watchdog device: empty value"]),
    (
        "watchdog negative timeout",
        [typed("WatchdogTimerConfig", device="/dev/watchdog1", timeout="-1m")],
        ["watchdog timeout: minimum value is 10s"],
    ),
    (
        "watchdog small timeout",
        [typed("WatchdogTimerConfig", device="/dev/watchdog1", timeout="1s")],
        ["watchdog timeout: minimum value is 10s"],
    ),
    ("watchdog valid", [typed("WatchdogTimerConfig", device="/dev/watchdog2")], []),
    # v1alpha1/v1alpha1_validation_test.go TestValidate
    ("v1 machine required", [{"version": "v1alpha1"}], ["machine instructions are required"]),
    (
        "v1 extraKernelArgs with grubUseUKICmdline",
        [
            v1(
                "worker",
                install={
                    "disk": "/dev/vda",
                    "extraKernelArgs": ["foo=bar"],
                    "grubUseUKICmdline": True,
                },
            )
        ],
        ["install.extraKernelArgs and install.grubUseUKICmdline can't be used together"],
    ),
    (
        "v1 etcd subnets",
        [
            _etcd := v1(),
        ],
        ['etcd advertised subnet is not valid: "1234:"', 'etcd listen subnet is not valid: "10"'],
    ),
    (
        "v1 good kubelet subnet",
        [
            v1(
                "worker",
                kubelet={
                    "nodeIP": {
                        "validSubnets": ["10.0.0.0/8", "!10.0.0.3/32", "!fd00::169:254:2:53/128"]
                    }
                },
            )
        ],
        [],
    ),
    (
        "v1 bad kubelet subnet",
        [
            v1(
                "worker",
                kubelet={"nodeIP": {"validSubnets": ["10.0.0.0.3", "[fd00::169:254:2:53]:344"]}},
            )
        ],
        [
            'kubelet nodeIP subnet is not valid: "10.0.0.0.3"',
            'kubelet nodeIP subnet is not valid: "[fd00::169:254:2:53]:344"',
        ],
    ),
    (
        "v1 bad kubelet extra config",
        [v1("worker", kubelet={"extraConfig": {"port": 345}})],
        ['kubelet configuration field "port" can\'t be overridden'],
    ),
    (
        "v1 node labels",
        [v1("worker", nodeLabels=LABELS_6)],
        [
            'prefix cannot be empty: "/foo"',
            'prefix "123@.dev" is invalid: domain doesn\'t match required format: "123@.dev"',
            'name "@!" is invalid',
            'label value "#$" is invalid',
            'invalid format: too many slashes: "a/b/c"',
            f'label value length exceeds limit of 63: "{"a" * 64}"',
        ],
    ),
    (
        "v1 hostDNS forward without enabled",
        [v1(features={"hostDNS": {"forwardKubeDNSToHost": True}})],
        [
            "feature hostDNS.forwardKubeDNSToHost requires hostDNS.enabled to be true (.machine.features.hostDNS)"
        ],
    ),
    (
        "v1 Talos API access on a worker",
        [v1("worker", features={"kubernetesTalosAPIAccess": {"enabled": True}})],
        ["feature Kubernetes Talos API Access can only be enabled on control plane machines"],
    ),
]
_etcd["cluster"]["etcd"] = {"ca": {}, "advertisedSubnets": ["1234:"], "listenSubnets": ["10"]}
_worker_etcd = v1("worker")
_worker_etcd["cluster"]["etcd"] = {"advertisedSubnets": ["10.0.0.0/8"]}
CASES.append(
    (
        "v1 etcd on a worker",
        [_worker_etcd],
        ["etcd config is only allowed on control plane machines"],
    )
)
# v1alpha1_validation_test.go TestValidateCNI
for _cni, _want in [
    (None, []),
    ({}, ['cni name should be one of ["flannel", "custom", "none"]']),
    ({"name": "flannel"}, []),
    (
        {"name": "flannel", "urls": ["https://host.test/quick-install.yaml"]},
        ['"urls" field should be empty for "flannel" CNI'],
    ),
    (
        {
            "name": "custom",
            "urls": ["https://host.test/quick-install.yaml"],
            "flannel": {"extraArgs": ["--foo"]},
        },
        ['"flanneldExtraArgs" field should be empty for "custom" CNI'],
    ),
    (
        {
            "name": "custom",
            "urls": ["https://host.test/quick-install.yaml"],
            "flannel": {"kubeNetworkPoliciesEnabled": True},
        },
        ['"flannelKubeNetworkPoliciesEnabled" should not be enabled for "custom" CNI'],
    ),
    (
        {"name": "none", "urls": ["https://host.test/quick-install.yaml"]},
        ['"urls" field should be empty for "none" CNI'],
    ),
    (
        {"name": "none", "flannel": {"kubeNetworkPoliciesEnabled": True}},
        ['"flannelKubeNetworkPoliciesEnabled" should not be enabled for "none" CNI'],
    ),
]:
    _doc = v1()
    if _cni is not None:
        _doc["cluster"]["network"] = {"cni": _cni}
    CASES.append((f"cni {_cni}", [_doc], _want))
# container/container.go New (link kinds conflict by name)
CASES.append(
    (
        "conflicting link documents",
        [typed("LinkConfig", name="bond0"), typed("BondConfig", name="bond0", links=["eth0"])],
        ["conflicting documents: LinkConfig/bond0 and BondConfig/bond0"],
    )
)


def _matches(problems: list[str], want: list[str]) -> bool:
    """Each expected message in some problem, and no problem beyond them."""
    if not want:
        return problems == []
    return 0 < len(problems) <= len(want) and all(any(w in p for p in problems) for w in want)


@pytest.mark.parametrize(("name", "docs", "want"), CASES, ids=[c[0] for c in CASES])
def test_domum_rules_on_the_upstream_examples(name: str, docs: list[Any], want: list[str]) -> None:
    problems = rules.validate(copy.deepcopy(docs), secrets=True)
    assert _matches(problems, want), problems


@pytest.mark.parametrize(("name", "docs", "want"), CASES, ids=[c[0] for c in CASES])
def test_stand_in_on_the_upstream_examples(name: str, docs: list[Any], want: list[str]) -> None:
    problems = stand_in.validate_docs(copy.deepcopy(docs))
    assert _matches(problems, want), problems


# --- secrets: Domum's offline model has none, talosctl always checks them --------------------------

NO_CA = [
    {
        "version": "v1alpha1",
        "machine": {"type": "controlplane", "install": {"disk": "/dev/vda"}},
        "cluster": {
            "controlPlane": {"endpoint": "https://127.0.0.1:6443"},
            "etcd": {"advertisedSubnets": ["10.0.0.0/8"]},
        },
    }
]
NO_CA_PROBLEMS = [
    "key/cert combination should not be empty",
    "issuing CA or some accepted CAs are required (.machine.ca, machine.acceptedCAs)",
    "issuing CA is required (.machine.ca)",
]


def test_secret_rules_run_only_when_the_secrets_are_in_the_documents() -> None:
    assert rules.validate(copy.deepcopy(NO_CA)) == []
    got = rules.validate(copy.deepcopy(NO_CA), secrets=True)
    assert sorted(p.removeprefix("v1alpha1.Config: ") for p in got) == sorted(NO_CA_PROBLEMS)
    assert sorted(
        p.removeprefix("v1alpha1.Config: ") for p in stand_in.validate_docs(copy.deepcopy(NO_CA))
    ) == sorted(NO_CA_PROBLEMS)
    worker = v1("worker", ca={"crt": "Zm9v", "key": "YmFy"})  # v1alpha1_validation_test.go
    assert rules.validate([worker], secrets=True) == [
        "v1alpha1.Config: issuing Talos API CA key is not allowed on non-controlplane nodes (.machine.ca)"
    ]


def test_modes_follow_requires_install_and_in_container() -> None:
    doc = v1()
    del doc["machine"]["install"]
    assert rules.validate([doc], "cloud", secrets=True) == []
    assert rules.validate([doc], "metal", secrets=True) == [
        'v1alpha1.Config: install instructions are required in "metal" mode'
    ]
    assert len(rules.validate([doc], "container", secrets=True)) == 2  # hostDNS must be on


def test_stand_in_accepts_deprecated_keys_talos_still_decodes(
    fake_cli: Any, tmp_path: Path
) -> None:
    """machine.network / machine.time / install.extraKernelArgs are not in the JSON schema but the
    v1.13.9 Go types decode them: talosctl validate accepts them."""
    doc = v1(network={"hostname": "x"}, time={"servers": ["pool.ntp.org"]})
    doc["machine"]["install"]["extraKernelArgs"] = ["console=ttyS0"]
    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))
    proc = subprocess.run(
        ["talosctl", "validate", "--config", "c.yaml", "--mode", "metal"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
