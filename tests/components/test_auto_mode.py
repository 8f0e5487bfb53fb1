"""EKS Auto Mode (tests/fixtures/stacks/Pulumi.eks-auto.yaml): no node groups to size, a GPU
NodePool valid under the published CRD, Auto Mode's own load balancer and network policy."""

import copy
from typing import Any

import pytest

from components.auto_mode import gpu_node_pool_spec
from config.cluster import GpuNodePoolSettings
from tests.conftest import (
    FIXTURE_STACK_FILES,
    PROJECT_ROOT,
    objects_of,
    one,
    one_resource,
    resources_of,
)
from tools import validate
from tools.render import Rendered, render_stack

AUTO_STACK = PROJECT_ROOT / "tests" / "fixtures" / "stacks" / "Pulumi.eks-auto.yaml"
EKS = "eks:index:Cluster"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f8d3a8e-1c5b-4f6e-9a7d-2b4c6e8f0a1c"


@pytest.fixture(scope="module")
def auto() -> Rendered:
    assert AUTO_STACK in FIXTURE_STACK_FILES
    return render_stack(AUTO_STACK)


def test_auto_mode_cluster_has_no_node_groups_no_autoscaler_no_plugin(auto):
    inputs = one_resource(auto, EKS)["inputs"]
    assert inputs["autoMode"] == {
        "enabled": True,
        "computeConfig": {"nodePools": ["general-purpose", "system"]},
        "createNodeRole": True,
    }
    assert "useDefaultVpcCni" not in inputs
    assert set(inputs["accessEntries"]) == set(), "Auto Mode's node role entry is EKS's own"
    for absent in (
        "eks:index:ManagedNodeGroup",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "tfserving:index:ClusterAutoscaler",
        "kubernetes:helm.sh/v4:Chart",
    ):
        assert resources_of(auto, absent) == [], absent
    addons = sorted(r["inputs"]["addonName"] for r in resources_of(auto, "eks:index:Addon"))
    assert addons == ["metrics-server"], "Auto Mode brings the CNI and the Pod Identity agent"


def test_gpu_node_pool_is_nvidia_tainted_capped_and_valid_under_the_crd(auto):
    (pool,) = objects_of(auto, "NodePool")
    assert pool["apiVersion"] == "karpenter.sh/v1"
    assert validate.object_problems(pool) == []
    template = pool["spec"]["template"]
    assert template["spec"]["nodeClassRef"] == {
        "group": "eks.amazonaws.com",
        "kind": "NodeClass",
        "name": "default",
    }
    assert template["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    ]
    assert template["metadata"]["labels"] == {"nvidia.com/gpu.present": "true"}
    requirements = {
        r["key"]: (r["operator"], r["values"]) for r in template["spec"]["requirements"]
    }
    assert requirements == {
        "eks.amazonaws.com/instance-family": ("In", ["g6", "g5"]),
        "eks.amazonaws.com/instance-gpu-manufacturer": ("In", ["nvidia"]),
        "karpenter.sh/capacity-type": ("In", ["on-demand"]),
        "kubernetes.io/arch": ("In", ["amd64"]),
    }
    assert pool["spec"]["limits"] == {"nvidia.com/gpu": "2"}


def test_the_crd_check_refuses_what_the_api_server_would():
    spec: dict[str, Any] = gpu_node_pool_spec(GpuNodePoolSettings())
    good: dict[str, Any] = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "p"},
        "spec": spec,
    }
    assert validate.object_problems(good) == []
    typo = copy.deepcopy(good)
    typo["spec"]["template"]["spec"]["nodeClassReference"] = typo["spec"]["template"]["spec"].pop(
        "nodeClassRef"
    )
    assert validate.object_problems(typo), "an unknown field and a missing required one"
    bad_enum = copy.deepcopy(good)
    bad_enum["spec"]["disruption"]["consolidationPolicy"] = "Sometimes"
    assert any("Sometimes" in p for p in validate.object_problems(bad_enum))


def test_gpu_model_server_lands_only_on_gpu_nodes_and_the_gateway_never(auto):
    server = one(auto, "Deployment", "tfserving-server-")["spec"]["template"]["spec"]
    assert server["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert server["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    (container,) = server["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    gateway = one(auto, "Deployment", "tfserving-gateway-")["spec"]["template"]["spec"]
    assert "tolerations" not in gateway and "nodeSelector" not in gateway


def test_load_balancers_use_auto_modes_controller_with_tls_and_alpn(auto):
    server = one(auto, "Service", "tfserving-server-")
    assert server["spec"]["loadBalancerClass"] == "eks.amazonaws.com/nlb"
    assert server["metadata"]["annotations"] == {
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": (
            "deregistration_delay.timeout_seconds=20"
        ),
        "service.beta.kubernetes.io/aws-load-balancer-ssl-cert": CERTIFICATE,
        "service.beta.kubernetes.io/aws-load-balancer-ssl-ports": "http,grpc",
        "service.beta.kubernetes.io/aws-load-balancer-alpn-policy": "HTTP2Optional",
    }
    assert server["spec"]["loadBalancerSourceRanges"] == ["198.51.100.0/24"]
    assert [p["name"] for p in server["spec"]["ports"]] == ["http", "grpc"]
    assert auto.outputs["predictUrl"].startswith("https://")
    gateway = one(auto, "Service", "tfserving-gateway-")
    assert gateway["metadata"]["annotations"] == {
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": (
            "deregistration_delay.timeout_seconds=20"
        ),
    }
    assert gateway["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/16"]


def test_network_policies_are_switched_on_in_auto_mode(auto):
    patch = one_resource(auto, "kubernetes:core/v1:ConfigMapPatch")
    assert patch["inputs"]["metadata"] == {"name": "amazon-vpc-cni", "namespace": "kube-system"}
    assert patch["inputs"]["data"] == {"enable-network-policy-controller": "true"}


def test_kubernetes_objects_wait_for_auto_modes_pieces(auto):
    waits = {one_resource(auto, "eks:index:Addon", "tfserving-metrics-server")["urn"]}
    waits.add(one_resource(auto, "kubernetes:karpenter.sh/v1:NodePool")["urn"])
    waits.add(one_resource(auto, "kubernetes:core/v1:ConfigMapPatch")["urn"])
    ours = [r for r in auto.resources if r["type"].startswith("kubernetes:") and r["custom"]
            and r["parent"].endswith(("ModelServer::tfserving", "Gateway::tfserving"))]  # fmt: skip
    assert len(ours) >= 12
    for resource in ours:
        assert waits <= set(resource["dependencies"]), resource["name"]
