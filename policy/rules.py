"""The policy rules as plain functions over (resource type, props), engine-free.

Each `check_*` returns a list of violation messages (empty = compliant). A message names the rule,
the resource and what is wrong, e.g.
`container-resources: kubernetes:apps/v1:Deployment 'web' container 'app': no limits.memory`.
Resource rules (`RULES`) see one resource at a time; stack rules (`STACK_RULES`) see the whole
stack as a list of (resource type, props, name), for checks that relate resources to each other.

Props are the resource inputs, camelCase, as Pulumi sends them to a policy pack (stack rules get
the resources' outputs, which for Kubernetes objects hold the same fields, names filled in). The
engine hands them over as read-only Mapping/Sequence proxies (not dict/list), so only the abstract
types are used here. During a preview an unknown value raises the engine's UnknownValueError
when read; the engine turns that into an advisory "can't run during preview" note, so nothing
here catches it.
"""

from collections.abc import Sequence
from dataclasses import dataclass

try:
    from policy import aws, exposure, resources, workloads
except ImportError:  # run by Pulumi from policy/: see __main__.py
    import aws  # type: ignore[import-not-found, no-redef]
    import exposure  # type: ignore[import-not-found, no-redef]
    import resources  # type: ignore[import-not-found, no-redef]
    import workloads  # type: ignore[import-not-found, no-redef]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: resources.Check


RULES: tuple[Rule, ...] = (
    Rule(
        "container-resources",
        "Every container (init containers too) sets CPU and memory requests and limits.",
        workloads.check_container_resources,
    ),
    Rule(
        "image-pinned",
        "Container images are pinned: a version tag (not latest) or a sha256 digest.",
        workloads.check_image_pinned,
    ),
    Rule(
        "run-as-non-root",
        "Containers run as non-root (runAsNonRoot true or a non-zero runAsUser).",
        workloads.check_run_as_non_root,
    ),
    Rule(
        "readiness-probe",
        "Every Deployment container has a readiness probe.",
        workloads.check_readiness_probe,
    ),
    Rule(
        "hpa",
        "HorizontalPodAutoscalers have 1 <= minReplicas <= maxReplicas and a CPU target.",
        workloads.check_hpa,
    ),
    Rule(
        "loadbalancer-source-ranges",
        "LoadBalancer Services restrict their clients with loadBalancerSourceRanges.",
        exposure.check_load_balancer_source_ranges,
    ),
    Rule(
        "tfserving-grpc-not-world-open",
        "A LoadBalancer open to the whole internet (a /0 range, or no ranges) exposes no TF "
        "Serving gRPC port (8500 or named grpc), unless annotated tfserving.dev/allow-world-grpc.",
        exposure.check_grpc_not_world_open,
    ),
    Rule(
        "namespace-pod-security",
        "Namespaces carry the Pod Security labels: enforce restricted, warn and audit set.",
        exposure.check_namespace_pod_security,
    ),
    Rule(
        "ecr-repository",
        "ECR repositories scan on push and have immutable tags.",
        aws.check_ecr_repository,
    ),
    Rule(
        "eks-private-nodes",
        "EKS worker nodes get no public IP addresses and live in private subnets.",
        aws.check_eks_private_nodes,
    ),
)


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    check: resources.StackCheck


STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "network-policy-per-namespace",
        "Every Namespace the stack creates holds at least one NetworkPolicy.",
        exposure.check_network_policy_per_namespace,
    ),
)


def violations(resource_type: str, props: resources.Props, name: str) -> list[str]:
    """Every resource rule's violations for one resource."""
    return [msg for rule in RULES for msg in rule.check(resource_type, props, name)]


def stack_violations(stack: Sequence[resources.StackResource]) -> list[str]:
    """Every rule's violations for a whole stack: each resource, then the stack rules."""
    return [msg for r in stack for msg in violations(*r)] + [
        msg for rule in STACK_RULES for msg in rule.check(stack)
    ]
