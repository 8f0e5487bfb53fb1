"""Where the system runs: one function per target, each returning the same `Platform` shape.

A target supplies the Kubernetes provider, what every object must wait for, how images are
built and shipped to its nodes, how Services are exposed and how users reach them.
`__main__.py` picks one by `tfserving:target`.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components import workload
from components.container_image import ContainerImage, ContainerImageArgs
from components.eks_cluster import EksCluster, EksClusterArgs
from components.model_server import MODELS_ROOT
from components.registry import ImageRegistry, ImageRegistryArgs
from components.settings import (
    ModelSettings,
    ServerSettings,
    ServiceType,
    Settings,
    Target,
)

# The AWS cloud provider's own service controller (which EKS runs in its control plane) makes a
# Network Load Balancer for this annotation: internet-facing (its default) in the subnets tagged
# kubernetes.io/role/elb, instance targets through the Service's node ports, and
# loadBalancerSourceRanges enforced as rules on the nodes' security group (an NLB keeps the
# client address). The AWS Load Balancer Controller's annotations (type external, nlb-target-type
# ip, scheme) would do nothing: that controller is not installed.
NLB_ANNOTATIONS = {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}


@dataclass(frozen=True)
class ImageBuild:
    """An image to build: a context directory and its Dockerfile (text or file)."""

    context: Path
    dockerfile_inline: str | None = None
    dockerfile_path: Path | None = None


@dataclass(frozen=True)
class Endpoint:
    """One address users reach a Service on, e.g. REST predict on port `http` + a path."""

    port_name: str
    port: int
    path: str = ""
    scheme: str = "http"


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
    service_annotations: Mapping[str, str] = field(default_factory=dict)
    # Stack outputs of the target itself (cluster name, kubeconfig, ...).
    outputs: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


def _local_port(port: int) -> int:
    # Ports below 1024 need root to bind locally: forward 80 to 8080.
    return port if port >= 1024 else port + 8000


def _url(
    endpoint: Endpoint, host: pulumi.Input[str], port: pulumi.Input[str | int]
) -> pulumi.Output[str]:
    if not endpoint.scheme:  # e.g. a gRPC address: host:port
        return pulumi.Output.format("{0}:{1}", host, port)
    return pulumi.Output.format("{0}://{1}:{2}{3}", endpoint.scheme, host, port, endpoint.path)


def model_dockerfile(model: ModelSettings, server: ServerSettings) -> str:
    """The pinned TF Serving image with each SavedModel version at /models/<name>/<version>.

    Only the numbered version directories are copied. Mode 0755 (one mode covers the copied files
    and directories): world-readable and traversable, since the server runs as uid 1000, not as
    the root that owns the files.
    """
    lines = [f"FROM {server.image}"]
    for version in model.versions:
        lines.append(f"COPY --chmod=0755 {version} {MODELS_ROOT}/{model.name}/{version}")
    return "\n".join(lines) + "\n"


def model_build(model: ModelSettings, server: ServerSettings) -> ImageBuild:
    """The model image (source `image`): the SavedModel versions baked into the server image."""
    return ImageBuild(context=model.directory, dockerfile_inline=model_dockerfile(model, server))


def minikube(settings: Settings) -> Platform:
    """A laptop cluster: the current minikube context, Services on NodePorts.

    Images are built into the Docker daemon the shell points at: `make up` runs
    `eval $(minikube -p <profile> docker-env)` first, so they land on the minikube node and no
    registry is needed.
    """
    provider = k8s.Provider("minikube", context=settings.kube_context)
    profile = settings.kube_context

    def build_image(name: str, build: ImageBuild) -> ContainerImage:
        return ContainerImage(
            name,
            ContainerImageArgs(
                repository=re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
                context=build.context,
                dockerfile_inline=build.dockerfile_inline,
                dockerfile_path=build.dockerfile_path,
            ),
        )

    def expose(exposure: Exposure) -> dict[str, pulumi.Input[str]]:
        name = workload.name_of(exposure.service)
        kubectl = pulumi.Output.format("kubectl --context {0} -n {1}", profile, exposure.namespace)
        ports = {e.port for e in exposure.urls.values()}
        found: dict[str, pulumi.Input[str]] = {
            exposure.port_forward_output: pulumi.Output.format(
                "{0} port-forward svc/{1} {2}",
                kubectl,
                name,
                " ".join(f"{_local_port(p)}:{p}" for p in sorted(ports)),
            )
        }
        if exposure.service_type is ServiceType.NODE_PORT:
            for output, endpoint in exposure.urls.items():
                # The node port may be assigned by Kubernetes: ask the cluster, don't guess.
                node_port = pulumi.Output.format(
                    "$({0} get svc {1} -o jsonpath='{{.spec.ports[?(@.name==\"{2}\")].nodePort}}')",
                    kubectl,
                    name,
                    endpoint.port_name,
                )
                url = _url(endpoint, f"$(minikube -p {profile} ip)", node_port)
                found[f"{output}Command"] = pulumi.Output.format('echo "{0}"', url)
        return found

    return Platform(provider=provider, build_image=build_image, expose=expose)


def eks(settings: Settings) -> Platform:
    """An EKS cluster of its own; images in ECR; LoadBalancer Services behind AWS NLBs."""
    assert settings.cluster is not None and settings.registry is not None  # eks defaults
    registry_settings = settings.registry
    cluster_name = f"{pulumi.get_project()}-{pulumi.get_stack()}"
    cluster = EksCluster(
        "tfserving", EksClusterArgs(cluster_name=cluster_name, settings=settings.cluster)
    )
    region = pulumi.Config("aws").get("region")
    region_flag = f"--region {region} " if region else ""

    def build_image(name: str, build: ImageBuild) -> ContainerImage:
        # One repository per image: lifecycle rules and scan results stay per image.
        registry = ImageRegistry(name, ImageRegistryArgs(registry_settings))
        return ContainerImage(
            name,
            ContainerImageArgs(
                repository=registry.repository_url,
                context=build.context,
                dockerfile_inline=build.dockerfile_inline,
                dockerfile_path=build.dockerfile_path,
                registry=registry.login(),
            ),
        )

    def expose(exposure: Exposure) -> dict[str, pulumi.Input[str]]:
        if exposure.service_type is not ServiceType.LOAD_BALANCER:
            return {}
        host = exposure.service.status.apply(_load_balancer_hostname)
        found: dict[str, pulumi.Input[str]] = {
            output: _url(endpoint, host, endpoint.port)
            for output, endpoint in exposure.urls.items()
        }
        if exposure.hostname_output:
            found[exposure.hostname_output] = host
        return found

    return Platform(
        provider=cluster.provider,
        build_image=build_image,
        expose=expose,
        # Every Kubernetes object waits for these, so destroy removes the objects (and the load
        # balancer a LoadBalancer Service owns) while nodes and cluster are still there.
        depends_on=[*cluster.node_groups, cluster.metrics_server],
        service_annotations=NLB_ANNOTATIONS,
        outputs={
            "clusterName": cluster_name,
            "kubeconfig": cluster.kubeconfig,
            "kubeconfigCommand": f"aws eks update-kubeconfig {region_flag}--name {cluster_name}",
        },
    )


def _load_balancer_hostname(status: k8s.core.v1.outputs.ServiceStatus | None) -> str:
    # pulumi-kubernetes waits for a LoadBalancer Service's address before it reports success.
    ingress = status.load_balancer.ingress if status and status.load_balancer else None
    if not ingress or not (ingress[0].hostname or ingress[0].ip):
        raise ValueError("the LoadBalancer Service has no address")
    return str(ingress[0].hostname or ingress[0].ip)


def platform_for(settings: Settings) -> Platform:
    if settings.target is Target.EKS:
        return eks(settings)
    return minikube(settings)
