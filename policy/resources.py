"""What every rule reads: resource types, the props helpers, the pod spec of each workload kind.

Props are the resource inputs, camelCase, as Pulumi sends them to a policy pack (stack rules get
the resources' outputs, which for Kubernetes objects hold the same fields, names filled in). The
engine hands them over as read-only Mapping/Sequence proxies (not dict/list), so only the abstract
types are used here.
"""

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Props = Mapping[str, Any]
Check = Callable[[str, Props, str], list[str]]

K8S = "kubernetes:"
# Workload kinds -> where the pod spec lives in their props.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:core/v1:ReplicationController": ("spec", "template", "spec"),
}
HPA_TYPES = {
    "kubernetes:autoscaling/v1:HorizontalPodAutoscaler",
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    "kubernetes:autoscaling/v2beta2:HorizontalPodAutoscaler",
}
SERVICE = "kubernetes:core/v1:Service"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
EKS_CLUSTER = "eks:index:Cluster"
EKS_MANAGED_NODE_GROUP = "eks:index:ManagedNodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# TF Serving's gRPC port: it always serves ModelService (HandleReloadConfigRequest unloads or
# replaces the models), so it must never face the whole internet by accident.
TFSERVING_GRPC_PORT = 8500
TFSERVING_GRPC_PORT_NAME = "grpc"
ALLOW_WORLD_GRPC = "tfserving.dev/allow-world-grpc"
PSA = "pod-security.kubernetes.io/"
PSA_LEVELS = ("privileged", "baseline", "restricted")


def prop(props: Any, *path: str) -> Any:
    """props[path0][path1]...; None when any step is missing or not a mapping."""
    node = props
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def seq(value: Any) -> Sequence[Any]:
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value
    return ()


def named(resource_type: str, name: str) -> str:
    return f"{resource_type} '{name}'"


@dataclass(frozen=True)
class Container:
    kind: str  # "container" | "initContainer"
    name: str
    spec: Props


def pod_spec(resource_type: str, props: Props) -> Props | None:
    path = POD_SPEC_PATHS.get(resource_type)
    spec = prop(props, *path) if path else None
    return spec if isinstance(spec, Mapping) else None


def containers(spec: Props) -> Iterator[Container]:
    for kind, key in (("initContainer", "initContainers"), ("container", "containers")):
        for i, c in enumerate(seq(spec.get(key))):
            if isinstance(c, Mapping):
                yield Container(kind, str(c.get("name") or f"#{i}"), c)


StackResource = tuple[str, Props, str]  # (resource type, props, name)
StackCheck = Callable[[Sequence[StackResource]], list[str]]
