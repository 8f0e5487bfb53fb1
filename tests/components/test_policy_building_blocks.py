"""NetworkPolicy building blocks (components/network_policies.py), peer by peer and port by port."""

import pulumi
import pulumi_kubernetes as k8s

from components import network_policies as netpol
from tests.components.mocked import plain, register

PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
           "127.0.0.0/8", "0.0.0.0/8"]  # fmt: skip


def test_peers():
    assert plain(netpol.pods({"app": "x"})) == {"podSelector": {"matchLabels": {"app": "x"}}}
    assert plain(netpol.public_internet()) == [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE}}
    ]
    # host bits are dropped: a NetworkPolicy takes networks only
    assert plain(netpol.networks(["10.1.2.3/16", "192.0.2.7"])) == [
        {"ipBlock": {"cidr": "10.1.0.0/16"}},
        {"ipBlock": {"cidr": "192.0.2.7/32"}},
    ]


def test_dns_is_coredns_in_kube_system_on_udp_and_tcp():
    assert plain(netpol.dns_egress()) == {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


def test_ingress_from_some_peers_or_from_anywhere():
    peer = netpol.pods({"app": "gw"})
    assert plain(netpol.ingress_rule(["grpc", "http"], [peer])) == {
        "from": [{"podSelector": {"matchLabels": {"app": "gw"}}}],
        "ports": [{"protocol": "TCP", "port": "grpc"}, {"protocol": "TCP", "port": "http"}],
    }
    assert plain(netpol.ingress_rule(["http"], None)) == {
        "ports": [{"protocol": "TCP", "port": "http"}]
    }
    assert plain(netpol.ingress_rule(["http"], [])) == {
        "from": [],
        "ports": [{"protocol": "TCP", "port": "http"}],
    }


def test_egress_to_peers_on_some_or_every_port():
    peer = netpol.pods({"app": "tfs"})
    assert plain(netpol.egress_rule([("TCP", "grpc")], [peer])) == {
        "to": [{"podSelector": {"matchLabels": {"app": "tfs"}}}],
        "ports": [{"protocol": "TCP", "port": "grpc"}],
    }
    assert plain(netpol.egress_rule(None, [peer])) == {
        "to": [{"podSelector": {"matchLabels": {"app": "tfs"}}}]
    }
    assert plain(netpol.egress_rule([], [peer])) == {
        "to": [{"podSelector": {"matchLabels": {"app": "tfs"}}}]
    }


def test_the_default_policy_and_a_tiers_policy():
    metadata = k8s.meta.v1.ObjectMetaArgs(namespace="ns", labels={"a": "b"})
    ingress = [netpol.ingress_rule(["http"], None)]
    egress = [netpol.egress_rule(None, netpol.public_internet())]

    def build() -> None:
        netpol.default_deny_ingress("deny", metadata, pulumi.ResourceOptions())
        netpol.policy(
            "in",
            metadata=metadata,
            selector={"app": "x"},
            ingress=ingress,
            opts=pulumi.ResourceOptions(),
        )
        netpol.policy(
            "both", metadata=metadata, selector={"app": "x"}, ingress=ingress, egress=egress,
            opts=pulumi.ResourceOptions(),
        )  # fmt: skip

    done = register(build)
    kind = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
    deny = done.one(kind, "deny")["inputs"]
    assert deny["metadata"] == {"namespace": "ns", "labels": {"a": "b"}}
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert done.one(kind, "in")["inputs"]["spec"] == {
        "podSelector": {"matchLabels": {"app": "x"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"ports": [{"protocol": "TCP", "port": "http"}]}],
    }
    both = done.one(kind, "both")["inputs"]
    assert both["metadata"] == {"namespace": "ns", "labels": {"a": "b"}}
    assert both["spec"] == {
        "podSelector": {"matchLabels": {"app": "x"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"ports": [{"protocol": "TCP", "port": "http"}]}],
        "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE}}]}],
    }
