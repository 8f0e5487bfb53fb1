"""NetworkPolicies in every stack select exactly the pods they claim and open exactly what the
stack exposes; every pod meets Pod Security `restricted`, which the namespace enforces."""

from typing import Any

import pytest

from tests.conftest import FIXTURE_STACK_FILES, STACK_FILES, objects_of, one
from tests.pod_security import restricted_problems
from tools.render import Rendered, render_stack

MODEL_PODS = {
    "app.kubernetes.io/name": "model-server",
    "app.kubernetes.io/instance": "tfserving",
    "app.kubernetes.io/part-of": "tfserving",
}
GATEWAY_PODS = {**MODEL_PODS, "app.kubernetes.io/name": "gateway"}
PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
           "127.0.0.0/8", "0.0.0.0/8"]  # fmt: skip
ALL_STACKS = STACK_FILES + FIXTURE_STACK_FILES


@pytest.fixture(scope="module", params=ALL_STACKS, ids=lambda p: p.stem.split(".", 1)[1])
def rendered(request) -> Rendered:
    return render_stack(request.param)


def _policy(rendered: Rendered, prefix: str) -> dict[str, Any]:
    return one(rendered, "NetworkPolicy", prefix)


def _ports(rule: dict[str, Any]) -> list[Any]:
    return [p["port"] for p in rule["ports"]]


def test_every_namespace_denies_ingress_by_default(rendered):
    (namespace,) = objects_of(rendered, "Namespace")
    deny = _policy(rendered, "tfserving-default-deny-")
    assert deny["metadata"]["namespace"] == namespace["metadata"]["name"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_namespace_enforces_restricted_pod_security_and_every_pod_meets_it(rendered):
    (namespace,) = objects_of(rendered, "Namespace")
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
    deployments = objects_of(rendered, "Deployment")
    assert deployments
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert restricted_problems(pod) == [], deployment["metadata"]["name"]


def test_policies_select_exactly_the_pods_of_their_tier(rendered):
    selectors = {
        d["metadata"]["name"].rsplit("-", 1)[0]: d["spec"]["selector"]["matchLabels"]
        for d in objects_of(rendered, "Deployment")
    }
    assert selectors["tfserving-server"] == MODEL_PODS
    server = _policy(rendered, "tfserving-server-")
    assert server["spec"]["podSelector"] == {"matchLabels": MODEL_PODS}
    if "tfserving-gateway" in selectors:
        assert selectors["tfserving-gateway"] == GATEWAY_PODS
        assert _policy(rendered, "tfserving-gateway-")["spec"]["podSelector"] == {
            "matchLabels": GATEWAY_PODS
        }


def _server_ingress(stack: str) -> list[dict[str, Any]]:
    rendered = render_stack(next(p for p in ALL_STACKS if p.stem == f"Pulumi.{stack}"))
    return _policy(rendered, "tfserving-server-")["spec"]["ingress"]


def test_dev_opens_rest_and_grpc_node_ports_to_anyone():
    assert _server_ingress("dev") == [
        {"ports": [{"protocol": "TCP", "port": "http"}]},
        {"ports": [{"protocol": "TCP", "port": "grpc"}]},
    ]


def test_behind_the_gateway_tf_serving_takes_calls_from_the_gateway_only():
    gateway_only = [{"podSelector": {"matchLabels": GATEWAY_PODS}}]
    for stack in ("gateway", "eks-gpu"):
        assert _server_ingress(stack) == [
            {"from": gateway_only, "ports": [{"protocol": "TCP", "port": "http"}]},
            {"from": gateway_only, "ports": [{"protocol": "TCP", "port": "grpc"}]},
        ], stack


def test_world_open_load_balancer_opens_rest_and_keeps_grpc_closed():
    # eks: 0.0.0.0/0, no gateway: gRPC reaches nobody (it is not on the load balancer either).
    assert _server_ingress("eks") == [{"ports": [{"protocol": "TCP", "port": "http"}]}]


def test_gateway_reaches_dns_tf_serving_and_the_public_internet_only():
    rendered = render_stack(next(p for p in ALL_STACKS if p.stem == "Pulumi.gateway"))
    spec = _policy(rendered, "tfserving-gateway-")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    monitoring = {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}
        ]
    }
    assert spec["ingress"] == [
        {"ports": [{"protocol": "TCP", "port": "http"}]},
        {
            "ports": [{"protocol": "TCP", "port": "metrics"}],
            "from": [{"namespaceSelector": monitoring}],
        },
    ]
    assert spec["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                    },
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {
            "to": [{"podSelector": {"matchLabels": MODEL_PODS}}],
            "ports": [{"protocol": "TCP", "port": "grpc"}],
        },
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE}}]},
    ]


def test_allowed_internal_networks_and_hosts_open_egress(render_dev):
    gateway = {
        "tfserving:gateway": {
            "enabled": True,
            "image": "example.com/gateway:1.0",
            "allowedInternal": ["10.20.0.0/16", "[fd00::1]", "images.internal"],
        }
    }
    egress = _policy(render_dev(gateway), "tfserving-gateway-")["spec"]["egress"]
    assert egress[3] == {
        "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}, {"ipBlock": {"cidr": "fd00::1/128"}}]
    }
    # Host names cannot be written in a NetworkPolicy: the private ranges on the web ports.
    assert egress[4] == {
        "to": [{"ipBlock": {"cidr": c}} for c in PRIVATE],
        "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 443}],
    }
    assert len(egress) == 5
