"""Crafted resources and message helpers shared by the policy tests."""

from typing import Any

from policy import exposure, resources, rules


def deployment(**container_overrides: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "app",
        "image": "tensorflow/serving:2.19.1",
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "readinessProbe": {"httpGet": {"path": "/v1/models/m", "port": 8501}},
        "securityContext": {"runAsNonRoot": True},
    }
    container.update(container_overrides)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


def messages(resource_type: str, props: dict[str, Any], name: str = "web") -> list[str]:
    return rules.violations(resource_type, props, name)


def assert_one(found: list[str], rule: str, *fragments: str) -> None:
    assert len(found) == 1, found
    assert found[0].startswith(f"{rule}: ")
    for fragment in fragments:
        assert fragment in found[0], found[0]


# --- tfserving-grpc-not-world-open -----------------------------------------------------------

REST = {"name": "http", "port": 8501, "targetPort": "http"}
GRPC = {"name": "grpc", "port": 8500, "targetPort": "grpc"}
ALLOW = {"tfserving.dev/allow-world-grpc": "true"}


def load_balancer(
    ports: list[dict[str, Any]], ranges: list[str] | None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "LoadBalancer", "ports": ports}
    if ranges is not None:
        spec["loadBalancerSourceRanges"] = ranges
    return {"metadata": {"annotations": annotations or {}}, "spec": spec}


def grpc_open(props: dict[str, Any]) -> list[str]:
    return exposure.check_grpc_not_world_open(resources.SERVICE, props, "tfserving")


def world_grpc_message(ports: str, how: str) -> str:
    return (
        "tfserving-grpc-not-world-open: kubernetes:core/v1:Service 'tfserving': exposes TF "
        f"Serving's gRPC port {ports} to the whole internet: it {how}. The gRPC port serves "
        "ModelService (anyone can unload or replace the model): narrow the ranges, expose only "
        'the REST port, or acknowledge it (annotation tfserving.dev/allow-world-grpc: "true")'
    )


# --- namespace-pod-security -----------------------------------------------------------------

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


def namespace(name: str | None = "tfserving", labels: dict[str, str] | None = None) -> Any:
    metadata: dict[str, Any] = {"labels": RESTRICTED if labels is None else labels}
    if name is not None:
        metadata["name"] = name
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


# --- network-policy-per-namespace (a stack rule) --------------------------------------------


def network_policy(namespace: str | None) -> dict[str, Any]:
    metadata = {} if namespace is None else {"namespace": namespace}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def no_policy_message(name: str, namespace: str) -> str:
    return (
        f"network-policy-per-namespace: kubernetes:core/v1:Namespace '{name}': no NetworkPolicy "
        f"in namespace '{namespace}' (every pod in the cluster can reach its pods; add at least "
        "a default-deny ingress policy)"
    )
