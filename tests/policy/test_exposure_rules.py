"""Exposure rules: TF Serving's gRPC port off the open internet, Pod Security labels, a
NetworkPolicy in every namespace (a stack rule)."""

from typing import Any

import pytest

from policy import exposure, resources, rules
from tests.policy.support import (
    ALLOW,
    GRPC,
    REST,
    RESTRICTED,
    deployment,
    grpc_open,
    load_balancer,
    messages,
    namespace,
    network_policy,
    no_policy_message,
    world_grpc_message,
)


@pytest.mark.parametrize(
    ("ranges", "how"),
    [
        (["0.0.0.0/0"], "allows 0.0.0.0/0 in loadBalancerSourceRanges"),
        (["::/0"], "allows ::/0 in loadBalancerSourceRanges"),
        (["203.0.113.0/24", "10.1.2.3/0"], "allows 10.1.2.3/0 in loadBalancerSourceRanges"),
        (["0.0.0.0/0", "::/0"], "allows 0.0.0.0/0, ::/0 in loadBalancerSourceRanges"),
        (None, "has no loadBalancerSourceRanges (Kubernetes then allows everyone)"),
        ([], "has no loadBalancerSourceRanges (Kubernetes then allows everyone)"),
    ],
)
def test_world_open_load_balancer_with_grpc(ranges: list[str] | None, how: str) -> None:
    assert grpc_open(load_balancer([REST, GRPC], ranges)) == [
        world_grpc_message("8500 (grpc)", how)
    ]


@pytest.mark.parametrize(
    ("port", "label"),
    [
        ({"port": 8500}, "8500"),  # by number, unnamed
        ({"port": 8500.0}, "8500"),  # numbers arrive as floats over the analyzer protocol
        ({"name": "grpc", "port": 443, "targetPort": 8500}, "443 (grpc)"),  # by name
        ({"name": "api", "port": 443, "targetPort": "grpc"}, "443 (api)"),  # by target name
        ({"name": "api", "port": 443, "targetPort": "8500"}, "443 (api)"),  # by target number
    ],
)
def test_the_grpc_port_is_found_by_number_or_name(port: dict[str, Any], label: str) -> None:
    found = grpc_open(load_balancer([port], ["0.0.0.0/0"]))
    assert found == [world_grpc_message(label, "allows 0.0.0.0/0 in loadBalancerSourceRanges")]


def test_every_exposed_grpc_port_is_named() -> None:
    both = load_balancer([GRPC, {"name": "grpc-tls", "port": 443, "targetPort": 8500}], None)
    assert grpc_open(both) == [
        world_grpc_message(
            "8500 (grpc), 443 (grpc-tls)",
            "has no loadBalancerSourceRanges (Kubernetes then allows everyone)",
        )
    ]


@pytest.mark.parametrize(
    "props",
    [
        load_balancer([REST], ["0.0.0.0/0"]),  # REST only may face the internet
        load_balancer([REST, GRPC], ["203.0.113.0/24", "2001:db8::/32"]),  # narrowed
        load_balancer([REST, GRPC], ["0.0.0.0/1", "128.0.0.0/1"]),  # halves: not a /0
        load_balancer([REST, GRPC], ["0.0.0.0/0"], ALLOW),  # acknowledged by the stack
        load_balancer([REST, GRPC], None, ALLOW),
        {"spec": {"type": "NodePort", "ports": [GRPC]}},  # not a load balancer
        {"spec": {"clusterIP": "None", "ports": [GRPC]}},
    ],
)
def test_load_balancers_that_keep_grpc_off_the_internet(props: dict[str, Any]) -> None:
    assert grpc_open(props) == []


@pytest.mark.parametrize("value", ["false", "True", "yes", ""])
def test_only_the_exact_acknowledgement_counts(value: str) -> None:
    props = load_balancer([GRPC], ["0.0.0.0/0"], {"tfserving.dev/allow-world-grpc": value})
    assert len(grpc_open(props)) == 1


def test_an_invalid_range_is_left_to_the_source_ranges_rule() -> None:
    found = messages(resources.SERVICE, load_balancer([GRPC], ["0.0.0.0/33"]))
    assert [m.split(":", 1)[0] for m in found] == ["loadbalancer-source-ranges"]


def test_a_world_open_grpc_load_balancer_fails_only_the_grpc_rule() -> None:
    found = messages(resources.SERVICE, load_balancer([REST, GRPC], ["0.0.0.0/0"]), "tfserving")
    assert found == [
        world_grpc_message("8500 (grpc)", "allows 0.0.0.0/0 in loadBalancerSourceRanges")
    ]


def test_a_restricted_namespace_passes() -> None:
    assert messages(resources.NAMESPACE, namespace()) == []
    versioned = {**RESTRICTED, "pod-security.kubernetes.io/enforce-version": "v1.34"}
    baseline_warn = {**RESTRICTED, "pod-security.kubernetes.io/warn": "baseline"}
    for labels in (versioned, baseline_warn):
        assert (
            exposure.check_namespace_pod_security(
                resources.NAMESPACE, namespace(labels=labels), "n"
            )
            == []
        )


def test_a_namespace_without_pod_security_labels() -> None:
    who = "namespace-pod-security: kubernetes:core/v1:Namespace 'tfserving-namespace'"
    assert messages(resources.NAMESPACE, namespace(labels={}), "tfserving-namespace") == [
        f"{who}: label pod-security.kubernetes.io/enforce is missing, must be restricted",
        f"{who}: label pod-security.kubernetes.io/warn is missing, must be privileged or "
        "baseline or restricted",
        f"{who}: label pod-security.kubernetes.io/audit is missing, must be privileged or "
        "baseline or restricted",
    ]
    no_metadata = {"apiVersion": "v1", "kind": "Namespace"}
    assert len(messages(resources.NAMESPACE, no_metadata)) == 3


@pytest.mark.parametrize(
    ("label", "value", "why"),
    [
        ("enforce", "baseline", "enforce is 'baseline', must be restricted"),
        ("enforce", "privileged", "enforce is 'privileged', must be restricted"),
        ("warn", "strict", "warn is 'strict', must be privileged or baseline or restricted"),
        ("audit", "", "audit is missing, must be privileged or baseline or restricted"),
    ],
)
def test_a_namespace_with_a_weak_or_invalid_level(label: str, value: str, why: str) -> None:
    labels = {**RESTRICTED, f"pod-security.kubernetes.io/{label}": value}
    assert messages(resources.NAMESPACE, namespace(labels=labels), "ns") == [
        f"namespace-pod-security: kubernetes:core/v1:Namespace 'ns': "
        f"label pod-security.kubernetes.io/{why}"
    ]


def test_every_namespace_needs_a_network_policy_in_it() -> None:
    check = exposure.check_network_policy_per_namespace
    ns = (resources.NAMESPACE, namespace("tfserving"), "tfserving-namespace")
    other = (resources.NAMESPACE, namespace("batch"), "batch-namespace")
    in_ns = (resources.NETWORK_POLICY, network_policy("tfserving"), "default-deny")
    assert check([ns, in_ns]) == []
    assert check([in_ns, ns]) == []  # order does not matter
    assert check([ns]) == [no_policy_message("tfserving-namespace", "tfserving")]
    assert check([ns, other, in_ns]) == [no_policy_message("batch-namespace", "batch")]
    elsewhere = (resources.NETWORK_POLICY, network_policy("batch"), "batch-deny")
    assert check([ns, elsewhere]) == [no_policy_message("tfserving-namespace", "tfserving")]


def test_a_network_policy_without_a_namespace_is_in_default() -> None:
    check = exposure.check_network_policy_per_namespace
    unplaced = (resources.NETWORK_POLICY, network_policy(None), "deny")
    assert check([(resources.NAMESPACE, namespace("default"), "d"), unplaced]) == []
    assert check([(resources.NAMESPACE, namespace("tfserving"), "t"), unplaced]) == [
        no_policy_message("t", "tfserving")
    ]


def test_no_namespace_nothing_to_check_and_a_nameless_namespace_is_reported() -> None:
    check = exposure.check_network_policy_per_namespace
    assert check([]) == []
    assert check([(resources.DEPLOYMENT, deployment(), "web")]) == []
    assert check([(resources.NAMESPACE, namespace(None), "ns")]) == [
        "network-policy-per-namespace: kubernetes:core/v1:Namespace 'ns': no metadata.name, so "
        "no NetworkPolicy can be matched to it"
    ]


def test_stack_violations_adds_the_stack_rules_to_each_resource_rule() -> None:
    ns = (resources.NAMESPACE, namespace("tfserving", labels={}), "tfserving-namespace")
    found = rules.stack_violations([ns])
    assert [m.split(":", 1)[0] for m in found] == [
        "namespace-pod-security",
        "namespace-pod-security",
        "namespace-pod-security",
        "network-policy-per-namespace",
    ]
