"""What EKS Auto Mode needs from us: a GPU NodePool when GPUs are asked, network policy on.

Auto Mode's built-in NodePools (general-purpose, system) launch C, M and R instances only, so
GPU serving needs a NodePool of its own (docs.aws.amazon.com/eks/latest/userguide/
auto-accelerated.html): NVIDIA instance families on Auto Mode's `default` NodeClass, tainted so
only the GPU model server lands there. Auto Mode brings the NVIDIA driver and device plugin.

pulumi-kubernetes has no typed classes for custom resources: the NodePool's spec is built from
the typed values below and checked against the published CRD schema in tests
(components/crds/karpenter.sh_nodepools.yaml).
"""

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.eks_nodes import GPU_NODE_LABEL, GPU_RESOURCE
from config.cluster import GpuNodePoolSettings

NODE_POOL_API = "karpenter.sh/v1"
NODE_CLASS = {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "default"}


@dataclass(frozen=True)
class Requirement:
    key: str
    values: tuple[str, ...]
    operator: str = "In"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "operator": self.operator, "values": list(self.values)}


def gpu_node_pool_spec(settings: GpuNodePoolSettings) -> dict[str, Any]:
    """A NodePool of NVIDIA nodes, tainted, labelled like a GPU node group, capped in GPUs."""
    requirements = [
        Requirement("eks.amazonaws.com/instance-family", tuple(settings.instance_families)),
        Requirement("eks.amazonaws.com/instance-gpu-manufacturer", ("nvidia",)),
        Requirement("karpenter.sh/capacity-type", tuple(settings.capacity_types)),
        Requirement("kubernetes.io/arch", ("amd64",)),  # TF Serving images are amd64 only
    ]
    return {
        "template": {
            "metadata": {"labels": {GPU_NODE_LABEL: "true"}},
            "spec": {
                "nodeClassRef": dict(NODE_CLASS),
                "requirements": [r.to_dict() for r in requirements],
                "taints": [{"key": GPU_RESOURCE, "value": "true", "effect": "NoSchedule"}],
                "expireAfter": "720h",
            },
        },
        # A cost ceiling: no more GPUs than this at once, whatever the HPA asks.
        "limits": {GPU_RESOURCE: str(settings.max_gpus)},
        # GPU nodes are expensive: give back an empty one soon, a busy one never.
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "5m"},
    }


def gpu_node_pool(
    name: str,
    settings: GpuNodePoolSettings,
    provider: k8s.Provider,
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource],
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        f"{name}-gpu-node-pool",
        api_version=NODE_POOL_API,
        kind="NodePool",
        metadata=k8s.meta.v1.ObjectMetaArgs(labels={"app.kubernetes.io/part-of": "tfserving"}),
        spec=gpu_node_pool_spec(settings),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=depends_on),
    )


def network_policy_controller(
    name: str, provider: k8s.Provider, parent: pulumi.Resource, depends_on: list[pulumi.Resource]
) -> k8s.core.v1.ConfigMapPatch:
    """Auto Mode enforces NetworkPolicies only once this ConfigMap turns its controller on
    (docs.aws.amazon.com/eks/latest/userguide/auto-net-pol.html). A patch (server-side apply of
    this one key), so it works whether or not the ConfigMap exists, and leaves the rest alone."""
    return k8s.core.v1.ConfigMapPatch(
        f"{name}-network-policy-controller",
        metadata=k8s.meta.v1.ObjectMetaPatchArgs(name="amazon-vpc-cni", namespace="kube-system"),
        data={"enable-network-policy-controller": "true"},
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=depends_on),
    )
