"""Target kind: a laptop cluster in Docker containers (kind.sigs.k8s.io), node ports on localhost.

What kind does not bring, the target adds or the Makefile does:

- **metrics-server** (the HPA reads CPU from it; kind has none): the official chart, pinned, as
  part of the target. Every Kubernetes object of the stack depends on it (`depends_on`), so
  destroy removes the workload first.
- **Node ports from the host**: kind's nodes are containers, so a NodePort is reached through the
  port mappings of `tools/kind/cluster.yaml` (`extraPortMappings`, containerPort = hostPort = the
  node port, bound to 127.0.0.1), which `make dev STACK=kind` creates the cluster from. The URL
  commands therefore print `http://127.0.0.1:<nodePort>/...`; `portForwardCommand` works with any
  Service type.
- **Images** (model source `image`, the gateway): built into the local Docker daemon like on
  minikube (`ContainerImage` without a registry exports to the daemon), then copied onto the
  node with `kind load docker-image` (kind's documented way; quick-start.md, "Loading an Image
  Into Your Cluster"). A Pulumi program cannot run that command without an extra provider, so
  `make up STACK=kind` does it between two steps: `pulumi up --target` the images (their URNs
  and tags come from the offline render, `python -m tools.kind images`), `kind load
  docker-image --name <clusterName>` those tags, then the whole `pulumi up`. Chosen over
  docker-build's tar export + `kind load image-archive` because it leaves the image component as
  it is (no second export, no tar file to keep outside Pulumi's state) and the loaded tag is the
  same plain, content-hashed tag the Deployment runs (pulled `IfNotPresent`, so the kubelet
  uses the loaded copy).
- **NetworkPolicies** are enforced by kindnet since kind 0.24 (kube-network-policies), so the
  policies the program renders hold on kind as on EKS.
"""

import pulumi
import pulumi_kubernetes as k8s

from config.settings import KindSettings
from targets.base import Platform
from targets.laptop import local_image, node_port_exposure

# kubernetes-sigs/metrics-server's chart (charts/metrics-server/Chart.yaml: version 3.13.1,
# appVersion 0.8.1, the current release when this was written).
METRICS_SERVER_CHART = "metrics-server"
METRICS_SERVER_VERSION = "3.13.1"
METRICS_SERVER_REPO = "https://kubernetes-sigs.github.io/metrics-server/"
# kind's kubelets serve self-signed certificates that metrics-server cannot verify: the chart's
# `args` are appended to its defaultArgs (values.yaml), and --kubelet-insecure-tls is the flag
# metrics-server documents for clusters whose kubelet certificates its CA did not sign (its
# README, "Requirements": "For testing purposes only").
METRICS_SERVER_VALUES = {"args": ["--kubelet-insecure-tls"]}
# Where tools/kind/cluster.yaml binds the node ports on the host.
HOST = "127.0.0.1"


def kind(settings: KindSettings) -> Platform:
    """The kind cluster's context, metrics-server on it, node ports on 127.0.0.1."""
    provider = k8s.Provider("kind", context=settings.kube_context)
    metrics_server = k8s.helm.v4.Chart(
        "kind-metrics-server",
        chart=METRICS_SERVER_CHART,
        version=METRICS_SERVER_VERSION,
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=METRICS_SERVER_REPO),
        namespace="kube-system",
        values=METRICS_SERVER_VALUES,
        opts=pulumi.ResourceOptions(provider=provider),
    )
    return Platform(
        provider=provider,
        # Into the local daemon; `make up STACK=kind` loads the tag onto the node (docstring).
        build_image=local_image,
        # The node port is the host's too where tools/kind/cluster.yaml maps it.
        expose=node_port_exposure(settings.kube_context, HOST),
        # The HPA needs metrics-server; destroy removes the workload before it.
        depends_on=[metrics_server],
    )
