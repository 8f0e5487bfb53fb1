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

import ipaddress
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


def _get(props: Any, *path: str) -> Any:
    """props[path0][path1]...; None when any step is missing or not a mapping."""
    node = props
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _seq(value: Any) -> Sequence[Any]:
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value
    return ()


def _who(resource_type: str, name: str) -> str:
    return f"{resource_type} '{name}'"


@dataclass(frozen=True)
class Container:
    kind: str  # "container" | "initContainer"
    name: str
    spec: Props


def pod_spec(resource_type: str, props: Props) -> Props | None:
    path = POD_SPEC_PATHS.get(resource_type)
    spec = _get(props, *path) if path else None
    return spec if isinstance(spec, Mapping) else None


def containers(spec: Props) -> Iterator[Container]:
    for kind, key in (("initContainer", "initContainers"), ("container", "containers")):
        for i, c in enumerate(_seq(spec.get(key))):
            if isinstance(c, Mapping):
                yield Container(kind, str(c.get("name") or f"#{i}"), c)


# --- Kubernetes workloads -------------------------------------------------------------------


def check_container_resources(resource_type: str, props: Props, name: str) -> list[str]:
    """Every container (init containers too) requests and limits both CPU and memory."""
    spec = pod_spec(resource_type, props)
    if spec is None:
        return []
    out = []
    for c in containers(spec):
        missing = [
            f"{section}.{res}"
            for section in ("requests", "limits")
            for res in ("cpu", "memory")
            if _get(c.spec, "resources", section, res) in (None, "")
        ]
        if missing:
            out.append(
                f"container-resources: {_who(resource_type, name)} {c.kind} '{c.name}': "
                f"no {', '.join(missing)} (the HPA cannot compute utilisation without requests, "
                "and a pod without limits can starve its node)"
            )
    return out


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None when it is (tag other than latest, digest)."""
    if "@" in image:
        digest = image.split("@", 1)[1]
        return None if DIGEST.match(digest) else f"malformed digest '{digest}'"
    last = image.rsplit("/", 1)[-1]  # a registry port (host:5000/x) is not a tag
    if ":" not in last:
        return "untagged (pulls whatever :latest is today)"
    tag = last.split(":", 1)[1]
    if tag == "latest":
        return "uses :latest"
    if not tag:
        return "empty tag"
    return None


def check_image_pinned(resource_type: str, props: Props, name: str) -> list[str]:
    """No `:latest`, no untagged image; a tag or a `@sha256:` digest is required."""
    spec = pod_spec(resource_type, props)
    if spec is None:
        return []
    out = []
    for c in containers(spec):
        image = c.spec.get("image")
        problem = "no image" if not image else image_problem(str(image))
        if problem:
            out.append(
                f"image-pinned: {_who(resource_type, name)} {c.kind} '{c.name}': image "
                f"'{image}' {problem}; pin a version tag or a @sha256: digest"
            )
    return out


def check_run_as_non_root(resource_type: str, props: Props, name: str) -> list[str]:
    """Each container runs as non-root: runAsNonRoot true or a non-zero runAsUser (pod or own)."""
    spec = pod_spec(resource_type, props)
    if spec is None:
        return []
    pod_sc = spec.get("securityContext")
    out = []
    for c in containers(spec):
        own_sc = c.spec.get("securityContext")
        # The container's own securityContext wins over the pod's, field by field.
        user = _get(own_sc, "runAsUser")
        if user is None:
            user = _get(pod_sc, "runAsUser")
        non_root = _get(own_sc, "runAsNonRoot")
        if non_root is None:
            non_root = _get(pod_sc, "runAsNonRoot")
        if user is not None and int(user) == 0:
            problem = "runAsUser is 0 (root)"
        elif user is None and non_root is not True:
            problem = "neither runAsNonRoot: true nor a non-zero runAsUser is set"
        else:
            continue
        out.append(
            f"run-as-non-root: {_who(resource_type, name)} {c.kind} '{c.name}': {problem}; "
            "images like tensorflow/serving run as root unless told otherwise"
        )
    return out


def check_readiness_probe(resource_type: str, props: Props, name: str) -> list[str]:
    """Deployments: every (non-init) container has a readiness probe."""
    if resource_type != DEPLOYMENT:
        return []
    spec = pod_spec(resource_type, props)
    if spec is None:
        return [f"readiness-probe: {_who(resource_type, name)}: no pod template"]
    return [
        f"readiness-probe: {_who(resource_type, name)} container '{c.name}': no readinessProbe "
        "(a Service would send traffic to pods still loading the model)"
        for c in containers(spec)
        if c.kind == "container" and not isinstance(c.spec.get("readinessProbe"), Mapping)
    ]


def _has_cpu_target(resource_type: str, spec: Props) -> bool:
    if resource_type.startswith("kubernetes:autoscaling/v1:"):
        return spec.get("targetCPUUtilizationPercentage") is not None
    for metric in _seq(spec.get("metrics")):
        kind = _get(metric, "type")
        source = _get(metric, "resource" if kind == "Resource" else "containerResource")
        if kind in ("Resource", "ContainerResource") and _get(source, "name") == "cpu":
            target = _get(source, "target")
            if _get(target, "averageUtilization") is not None:
                return True
            if _get(target, "averageValue") is not None:
                return True
    return False


def check_hpa(resource_type: str, props: Props, name: str) -> list[str]:
    """HPA: minReplicas (default 1) <= maxReplicas, both >= 1, and a CPU target."""
    if resource_type not in HPA_TYPES:
        return []
    spec = _get(props, "spec")
    if not isinstance(spec, Mapping):
        return [f"hpa: {_who(resource_type, name)}: no spec"]
    who = _who(resource_type, name)
    out = []
    min_r = spec.get("minReplicas")
    max_r = spec.get("maxReplicas")
    low = 1 if min_r is None else int(min_r)
    if max_r is None:
        out.append(f"hpa: {who}: no maxReplicas")
    elif low < 1 or low > int(max_r):
        out.append(f"hpa: {who}: minReplicas ({low}) must be >= 1 and <= maxReplicas ({max_r})")
    if not _has_cpu_target(resource_type, spec):
        out.append(f"hpa: {who}: no CPU target (a Resource metric on cpu with a target)")
    return out


def check_load_balancer_source_ranges(resource_type: str, props: Props, name: str) -> list[str]:
    """A LoadBalancer Service says who may reach it: non-empty, valid loadBalancerSourceRanges.

    This applies on every stack, not only `eks`: minikube never gives a LoadBalancer an address
    (dev uses NodePort), and on any cloud an open load balancer is a decision worth writing down.
    `0.0.0.0/0` is allowed, but it has to be written.
    """
    if resource_type != SERVICE or _get(props, "spec", "type") != "LoadBalancer":
        return []
    who = _who(resource_type, name)
    ranges = _seq(_get(props, "spec", "loadBalancerSourceRanges"))
    if not ranges:
        return [
            f"loadbalancer-source-ranges: {who}: type LoadBalancer without "
            "loadBalancerSourceRanges (the load balancer would be open to the internet by "
            "default; list the CIDRs that may reach it)"
        ]
    out = []
    for cidr in ranges:
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            out.append(f"loadbalancer-source-ranges: {who}: '{cidr}' is not a CIDR")
    return out


def _is_port(value: Any, number: int, name: str) -> bool:
    """A port or targetPort that is `number` (int, whole float, numeric string) or named `name`."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return value == number
    text = str(value)
    return text == name or (text.isdigit() and int(text) == number)


def _port_label(port: Any) -> str:
    number = _get(port, "port")
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    name = _get(port, "name")
    return f"{number} ({name})" if name else str(number)


def _whole_internet(cidr: Any) -> bool:
    """A range that contains every address of its family: 0.0.0.0/0, ::/0 (invalid: no)."""
    try:
        return ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0
    except ValueError:
        return False  # loadbalancer-source-ranges reports it


def check_grpc_not_world_open(resource_type: str, props: Props, name: str) -> list[str]:
    """A LoadBalancer open to the whole internet exposes no TF Serving gRPC port.

    Open to the whole internet: a `loadBalancerSourceRanges` entry that is a /0 (`0.0.0.0/0`,
    `::/0`), or no ranges at all (Kubernetes then allows everyone). The gRPC port: port or
    targetPort 8500, or named `grpc`. The annotation `tfserving.dev/allow-world-grpc: "true"`,
    which the program sets only when the stack acknowledges it explicitly, allows it.
    """
    if resource_type != SERVICE or _get(props, "spec", "type") != "LoadBalancer":
        return []
    if _get(props, "metadata", "annotations", ALLOW_WORLD_GRPC) == "true":
        return []
    grpc_ports = [
        p
        for p in _seq(_get(props, "spec", "ports"))
        if any(
            _is_port(_get(p, key), TFSERVING_GRPC_PORT, TFSERVING_GRPC_PORT_NAME)
            for key in ("port", "targetPort", "name")
        )
    ]
    if not grpc_ports:
        return []
    ranges = _seq(_get(props, "spec", "loadBalancerSourceRanges"))
    if not ranges:
        how = "has no loadBalancerSourceRanges (Kubernetes then allows everyone)"
    else:
        world = [str(c) for c in ranges if _whole_internet(c)]
        if not world:
            return []
        how = f"allows {', '.join(world)} in loadBalancerSourceRanges"
    ports = ", ".join(_port_label(p) for p in grpc_ports)
    return [
        f"tfserving-grpc-not-world-open: {_who(resource_type, name)}: exposes TF Serving's "
        f"gRPC port {ports} to the whole internet: it {how}. The gRPC port serves "
        "ModelService (anyone can unload or replace the model): narrow the ranges, expose only "
        f'the REST port, or acknowledge it (annotation {ALLOW_WORLD_GRPC}: "true")'
    ]


def check_namespace_pod_security(resource_type: str, props: Props, name: str) -> list[str]:
    """Namespaces enforce Pod Security `restricted`, and warn and audit at a valid level."""
    if resource_type != NAMESPACE:
        return []
    labels = _get(props, "metadata", "labels")
    labels = labels if isinstance(labels, Mapping) else {}
    problems = []
    wanted = {"enforce": ("restricted",), "warn": PSA_LEVELS, "audit": PSA_LEVELS}
    for mode, allowed in wanted.items():
        level = labels.get(f"{PSA}{mode}")
        if level not in allowed:
            found = f"'{level}'" if level else "missing"
            problems.append(f"label {PSA}{mode} is {found}, must be {' or '.join(allowed)}")
    return [
        f"namespace-pod-security: {_who(resource_type, name)}: {problem}" for problem in problems
    ]


# --- stack rules: over every resource of the stack ------------------------------------------

StackResource = tuple[str, Props, str]  # (resource type, props, name)
StackCheck = Callable[[Sequence[StackResource]], list[str]]


def check_network_policy_per_namespace(resources: Sequence[StackResource]) -> list[str]:
    """Every Namespace the program creates holds at least one NetworkPolicy.

    A Namespace's name is its `metadata.name`; a NetworkPolicy's namespace its
    `metadata.namespace` (`default` when left out, as Kubernetes does). Without any policy every
    pod in the cluster can reach every pod in the namespace, TF Serving's gRPC port included.
    """
    covered = {
        str(_get(props, "metadata", "namespace") or "default")
        for type_, props, _ in resources
        if type_ == NETWORK_POLICY
    }
    out = []
    for type_, props, name in resources:
        if type_ != NAMESPACE:
            continue
        who = _who(type_, name)
        namespace = _get(props, "metadata", "name")
        if not namespace:
            out.append(
                f"network-policy-per-namespace: {who}: no metadata.name, so no NetworkPolicy "
                "can be matched to it"
            )
        elif str(namespace) not in covered:
            out.append(
                f"network-policy-per-namespace: {who}: no NetworkPolicy in namespace "
                f"'{namespace}' (every pod in the cluster can reach its pods; add at least a "
                "default-deny ingress policy)"
            )
    return out


# --- AWS ------------------------------------------------------------------------------------


def check_ecr_repository(resource_type: str, props: Props, name: str) -> list[str]:
    """ECR repositories scan images on push and have immutable tags."""
    if resource_type != ECR_REPOSITORY:
        return []
    who = _who(resource_type, name)
    out = []
    if _get(props, "imageScanningConfiguration", "scanOnPush") is not True:
        out.append(f"ecr-repository: {who}: imageScanningConfiguration.scanOnPush is not true")
    mutability = props.get("imageTagMutability")
    if mutability != "IMMUTABLE":
        out.append(
            f"ecr-repository: {who}: imageTagMutability is {mutability or 'MUTABLE (default)'}, "
            "must be IMMUTABLE (a pushed tag must never point at other bits)"
        )
    return out


def check_eks_private_nodes(resource_type: str, props: Props, name: str) -> list[str]:
    """EKS worker nodes get no public IP address.

    - `eks:index:Cluster`: `nodeAssociatePublicIpAddress` must be explicitly false (pulumi-eks
      defaults it to true), and nodes need private subnets to go to.
    - `eks:index:ManagedNodeGroup`: `subnetIds` must be given; left out, pulumi-eks falls back to
      the cluster's subnet list, which holds the public subnets too, and EKS gives managed nodes
      in public subnets public IPs.
    - `aws:ec2/launchTemplate:LaunchTemplate`: no network interface asks for a public IP.
    """
    who = _who(resource_type, name)
    if resource_type == EKS_CLUSTER:
        out = []
        if props.get("nodeAssociatePublicIpAddress") is not False:
            out.append(f"eks-private-nodes: {who}: nodeAssociatePublicIpAddress must be false")
        if props.get("publicSubnetIds") and not props.get("privateSubnetIds"):
            out.append(
                f"eks-private-nodes: {who}: publicSubnetIds without privateSubnetIds puts the "
                "nodes in public subnets"
            )
        return out
    if resource_type == EKS_MANAGED_NODE_GROUP:
        if not _seq(props.get("subnetIds")):
            return [
                f"eks-private-nodes: {who}: no subnetIds; set them to the VPC's private subnets "
                "(the default includes the cluster's public subnets)"
            ]
        return []
    if resource_type == LAUNCH_TEMPLATE:
        return [
            f"eks-private-nodes: {who}: networkInterfaces[{i}].associatePublicIpAddress is true"
            for i, nic in enumerate(_seq(props.get("networkInterfaces")))
            if str(_get(nic, "associatePublicIpAddress")).lower() == "true"
        ]
    return []


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Check


RULES: tuple[Rule, ...] = (
    Rule(
        "container-resources",
        "Every container (init containers too) sets CPU and memory requests and limits.",
        check_container_resources,
    ),
    Rule(
        "image-pinned",
        "Container images are pinned: a version tag (not latest) or a sha256 digest.",
        check_image_pinned,
    ),
    Rule(
        "run-as-non-root",
        "Containers run as non-root (runAsNonRoot true or a non-zero runAsUser).",
        check_run_as_non_root,
    ),
    Rule(
        "readiness-probe",
        "Every Deployment container has a readiness probe.",
        check_readiness_probe,
    ),
    Rule(
        "hpa",
        "HorizontalPodAutoscalers have 1 <= minReplicas <= maxReplicas and a CPU target.",
        check_hpa,
    ),
    Rule(
        "loadbalancer-source-ranges",
        "LoadBalancer Services restrict their clients with loadBalancerSourceRanges.",
        check_load_balancer_source_ranges,
    ),
    Rule(
        "tfserving-grpc-not-world-open",
        "A LoadBalancer open to the whole internet (a /0 range, or no ranges) exposes no TF "
        "Serving gRPC port (8500 or named grpc), unless annotated tfserving.dev/allow-world-grpc.",
        check_grpc_not_world_open,
    ),
    Rule(
        "namespace-pod-security",
        "Namespaces carry the Pod Security labels: enforce restricted, warn and audit set.",
        check_namespace_pod_security,
    ),
    Rule(
        "ecr-repository",
        "ECR repositories scan on push and have immutable tags.",
        check_ecr_repository,
    ),
    Rule(
        "eks-private-nodes",
        "EKS worker nodes get no public IP addresses and live in private subnets.",
        check_eks_private_nodes,
    ),
)


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    check: StackCheck


STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "network-policy-per-namespace",
        "Every Namespace the stack creates holds at least one NetworkPolicy.",
        check_network_policy_per_namespace,
    ),
)


def violations(resource_type: str, props: Props, name: str) -> list[str]:
    """Every resource rule's violations for one resource."""
    return [msg for rule in RULES for msg in rule.check(resource_type, props, name)]


def stack_violations(resources: Sequence[StackResource]) -> list[str]:
    """Every rule's violations for a whole stack: each resource, then the stack rules."""
    return [msg for r in resources for msg in violations(*r)] + [
        msg for rule in STACK_RULES for msg in rule.check(resources)
    ]
