"""What every target supplies, in one shape: `Platform`, and how users reach what it runs.

A target provides the Kubernetes provider, what every object must wait for, how images reach its
nodes and how an exposed Service becomes stack outputs (`Exposure` -> URLs or commands). The
program (`__main__.py`) builds one with `targets.platform_for(settings)` and never asks which.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.container_image import ContainerImage, ImageBuild
from components.kube import LoadBalancer
from config.model import ModelSettings
from config.service import ServiceSettings, ServiceType


@dataclass(frozen=True)
class Endpoint:
    """One address users reach a Service on, e.g. REST predict on port `http` + a path."""

    port_name: str
    port: int
    path: str = ""
    scheme: str = "http"  # empty for a plain host:port (a gRPC address)


@dataclass(frozen=True)
class Exposure:
    """A Service to reach from outside the cluster, and the stack outputs that say how."""

    service: k8s.core.v1.Service
    namespace: pulumi.Input[str]
    service_type: ServiceType
    # Output name -> endpoint, e.g. {"predictUrl": Endpoint("http", 8501, "/v1/models/m:predict")}.
    urls: Mapping[str, Endpoint]
    port_forward_output: str
    hostname_output: str | None = None


@dataclass(frozen=True)
class Platform:
    provider: k8s.Provider
    # Builds an image where this target's nodes can run it (local daemon, or ECR).
    build_image: Callable[[str, ImageBuild], ContainerImage]
    # The stack outputs telling users how to reach an exposed Service.
    expose: Callable[[Exposure], dict[str, pulumi.Input[str]]]
    # Objects on the cluster wait for these, so destroy deletes them before the cluster goes.
    depends_on: Sequence[pulumi.Resource] = ()
    # How a LoadBalancer Service becomes a cloud load balancer (annotations, class), given the
    # names of its ports that take TLS; targets without one refuse LoadBalancer in config.
    load_balancer: Callable[[ServiceSettings, Sequence[str]], LoadBalancer] | None = None
    # Cloud access the model server's pods need for their models (S3 on eks); returns what the
    # model server must wait for.
    grant_model_access: Callable[[Sequence[ModelSettings]], list[pulumi.Resource]] | None = None
    region: str | None = None
    # Stack outputs of the target itself (cluster name, kubeconfig, ...).
    outputs: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


def url(
    endpoint: Endpoint, host: pulumi.Input[str], port: pulumi.Input[str | int]
) -> pulumi.Output[str]:
    if not endpoint.scheme:  # e.g. a gRPC address: host:port
        return pulumi.Output.format("{0}:{1}", host, port)
    return pulumi.Output.format("{0}://{1}:{2}{3}", endpoint.scheme, host, port, endpoint.path)
