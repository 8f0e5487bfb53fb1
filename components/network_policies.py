"""NetworkPolicies, on by default: nothing reaches a pod of ours unless a policy says who may.

Kubernetes applies every policy that selects a pod, so these add up: a default that denies all
ingress in the namespace, then one policy per tier that opens exactly its ports to its clients.
Enforcement is the CNI's: the VPC CNI's network-policy agent (nodeGroups), Auto Mode's
controller, kindnet (kind >= 0.24), Calico on minikube (`make dev` starts it with --cni=calico).
"""

import ipaddress
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

# Addresses a download must never reach directly: private, carrier-grade NAT, link-local (the
# cloud metadata service at 169.254.169.254), loopback; the gateway's own SSRF guard refuses
# them too, this is the network's second line.
PRIVATE_V4 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
              "127.0.0.0/8", "0.0.0.0/8"]  # fmt: skip
DNS_PORTS = [("UDP", 53), ("TCP", 53)]
# CoreDNS, as EKS, kind and minikube deploy it.
KUBE_DNS = {"k8s-app": "kube-dns"}
WEB_PORTS = [("TCP", 80), ("TCP", 443)]


def _ports(ports: Sequence[tuple[str, int | str]]) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(protocol=p, port=n) for p, n in ports]


def pods(selector: Mapping[str, str]) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    """Pods of this namespace with these labels."""
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector))
    )


def namespaces(names: Sequence[str]) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    """Every pod of these namespaces (by the name label Kubernetes sets on each namespace)."""
    return [
        k8s.networking.v1.NetworkPolicyPeerArgs(
            namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                match_expressions=[
                    k8s.meta.v1.LabelSelectorRequirementArgs(
                        key="kubernetes.io/metadata.name", operator="In", values=list(names)
                    )
                ]
            )
        )
    ]


def public_internet() -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    """Every IPv4 address but the private ones (the clusters here are IPv4-only)."""
    return [
        k8s.networking.v1.NetworkPolicyPeerArgs(
            ip_block=k8s.networking.v1.IPBlockArgs(cidr="0.0.0.0/0", except_=PRIVATE_V4)
        )
    ]


def networks(cidrs: Sequence[str]) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    return [
        k8s.networking.v1.NetworkPolicyPeerArgs(
            ip_block=k8s.networking.v1.IPBlockArgs(cidr=str(ipaddress.ip_network(c, strict=False)))
        )
        for c in cidrs
    ]


def dns_egress() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=[
            k8s.networking.v1.NetworkPolicyPeerArgs(
                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels={"kubernetes.io/metadata.name": "kube-system"}
                ),
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=KUBE_DNS),
            )
        ],
        ports=_ports(DNS_PORTS),
    )


def ingress_rule(
    ports: Sequence[str], sources: Sequence[k8s.networking.v1.NetworkPolicyPeerArgs] | None
) -> k8s.networking.v1.NetworkPolicyIngressRuleArgs:
    """Traffic to these named container ports from these peers only; None: from anywhere (what
    a node port or load balancer brings in; its own source ranges do the filtering)."""
    return k8s.networking.v1.NetworkPolicyIngressRuleArgs(
        from_=list(sources) if sources is not None else None,
        ports=_ports([("TCP", p) for p in ports]),
    )


def egress_rule(
    ports: Sequence[tuple[str, int | str]] | None,
    targets: Sequence[k8s.networking.v1.NetworkPolicyPeerArgs],
) -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=list(targets), ports=_ports(ports) if ports else None
    )


def default_deny_ingress(
    name: str, metadata: k8s.meta.v1.ObjectMetaArgs, opts: pulumi.ResourceOptions
) -> k8s.networking.v1.NetworkPolicy:
    """Every pod of the namespace: no ingress but what another policy allows."""
    return k8s.networking.v1.NetworkPolicy(
        name,
        metadata=metadata,
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress"]
        ),
        opts=opts,
    )


def policy(
    name: str,
    *,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    selector: Mapping[str, str],
    ingress: Sequence[k8s.networking.v1.NetworkPolicyIngressRuleArgs],
    egress: Sequence[k8s.networking.v1.NetworkPolicyEgressRuleArgs] | None = None,
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """The policy of one tier's pods: who may reach them, and (if given) what they may reach."""
    types = ["Ingress", "Egress"] if egress is not None else ["Ingress"]
    return k8s.networking.v1.NetworkPolicy(
        name,
        metadata=metadata,
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
            policy_types=types,
            ingress=list(ingress),
            egress=list(egress) if egress is not None else None,
        ),
        opts=opts,
    )
