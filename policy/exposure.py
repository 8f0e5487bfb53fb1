"""Rules for what faces the network: load balancer ranges, TF Serving's gRPC port, Pod Security
labels, and (a stack rule) a NetworkPolicy in every namespace."""

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

try:
    from policy import resources as res
except ImportError:  # run by Pulumi from policy/: see __main__.py
    import resources as res  # type: ignore[import-not-found, no-redef]


def check_load_balancer_source_ranges(resource_type: str, props: res.Props, name: str) -> list[str]:
    """A LoadBalancer Service says who may reach it: non-empty, valid loadBalancerSourceRanges.

    This applies on every stack, not only `eks`: minikube never gives a LoadBalancer an address
    (dev uses NodePort), and on any cloud an open load balancer is a decision worth writing down.
    `0.0.0.0/0` is allowed, but it has to be written.
    """
    if resource_type != res.SERVICE or res.prop(props, "spec", "type") != "LoadBalancer":
        return []
    who = res.named(resource_type, name)
    ranges = res.seq(res.prop(props, "spec", "loadBalancerSourceRanges"))
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
    number = res.prop(port, "port")
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    name = res.prop(port, "name")
    return f"{number} ({name})" if name else str(number)


def _whole_internet(cidr: Any) -> bool:
    """A range that contains every address of its family: 0.0.0.0/0, ::/0 (invalid: no)."""
    try:
        return ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0
    except ValueError:
        return False  # loadbalancer-source-ranges reports it


def check_grpc_not_world_open(resource_type: str, props: res.Props, name: str) -> list[str]:
    """A LoadBalancer open to the whole internet exposes no TF Serving gRPC port.

    Open to the whole internet: a `loadBalancerSourceRanges` entry that is a /0 (`0.0.0.0/0`,
    `::/0`), or no ranges at all (Kubernetes then allows everyone). The gRPC port: port or
    targetPort 8500, or res.named `grpc`. The annotation `tfserving.dev/allow-world-grpc: "true"`,
    which the program sets only when the stack acknowledges it explicitly, allows it.
    """
    if resource_type != res.SERVICE or res.prop(props, "spec", "type") != "LoadBalancer":
        return []
    if res.prop(props, "metadata", "annotations", res.ALLOW_WORLD_GRPC) == "true":
        return []
    grpc_ports = [
        p
        for p in res.seq(res.prop(props, "spec", "ports"))
        if any(
            _is_port(res.prop(p, key), res.TFSERVING_GRPC_PORT, res.TFSERVING_GRPC_PORT_NAME)
            for key in ("port", "targetPort", "name")
        )
    ]
    if not grpc_ports:
        return []
    ranges = res.seq(res.prop(props, "spec", "loadBalancerSourceRanges"))
    if not ranges:
        how = "has no loadBalancerSourceRanges (Kubernetes then allows everyone)"
    else:
        world = [str(c) for c in ranges if _whole_internet(c)]
        if not world:
            return []
        how = f"allows {', '.join(world)} in loadBalancerSourceRanges"
    ports = ", ".join(_port_label(p) for p in grpc_ports)
    return [
        f"tfserving-grpc-not-world-open: {res.named(resource_type, name)}: exposes TF Serving's "
        f"gRPC port {ports} to the whole internet: it {how}. The gRPC port serves "
        "ModelService (anyone can unload or replace the model): narrow the ranges, expose only "
        f'the REST port, or acknowledge it (annotation {res.ALLOW_WORLD_GRPC}: "true")'
    ]


def check_namespace_pod_security(resource_type: str, props: res.Props, name: str) -> list[str]:
    """Namespaces enforce Pod Security `restricted`, and warn and audit at a valid level."""
    if resource_type != res.NAMESPACE:
        return []
    labels = res.prop(props, "metadata", "labels")
    labels = labels if isinstance(labels, Mapping) else {}
    problems = []
    wanted = {"enforce": ("restricted",), "warn": res.PSA_LEVELS, "audit": res.PSA_LEVELS}
    for mode, allowed in wanted.items():
        level = labels.get(f"{res.PSA}{mode}")
        if level not in allowed:
            found = f"'{level}'" if level else "missing"
            problems.append(f"label {res.PSA}{mode} is {found}, must be {' or '.join(allowed)}")
    return [
        f"namespace-pod-security: {res.named(resource_type, name)}: {problem}"
        for problem in problems
    ]


def check_network_policy_per_namespace(resources: Sequence[res.StackResource]) -> list[str]:
    """Every Namespace the program creates holds at least one NetworkPolicy.

    A Namespace's name is its `metadata.name`; a NetworkPolicy's namespace its
    `metadata.namespace` (`default` when left out, as Kubernetes does). Without any policy every
    pod in the cluster can reach every pod in the namespace, TF Serving's gRPC port included.
    """
    covered = {
        str(res.prop(props, "metadata", "namespace") or "default")
        for type_, props, _ in resources
        if type_ == res.NETWORK_POLICY
    }
    out = []
    for type_, props, name in resources:
        if type_ != res.NAMESPACE:
            continue
        who = res.named(type_, name)
        namespace = res.prop(props, "metadata", "name")
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
