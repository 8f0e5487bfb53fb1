"""Where the model server runs: one function per target, each returning the same shape.

A target supplies the Kubernetes provider, what every object must wait for, how the Service is
exposed, and how users reach the endpoint. `__main__.py` picks one by `tfserving:target`.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.container_image import ContainerImage, ContainerImageArgs, RegistryLogin
from components.eks_cluster import EksCluster, EksClusterArgs
from components.model_server import GRPC_PORT, MODELS_ROOT, REST_PORT, ModelServer
from components.registry import ImageRegistry, ImageRegistryArgs
from components.settings import (
    ModelSettings,
    ModelSource,
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
class Platform:
    provider: k8s.Provider
    # Objects on the cluster wait for these, so destroy deletes them before the cluster goes.
    depends_on: Sequence[pulumi.Resource] = ()
    service_annotations: Mapping[str, str] = field(default_factory=dict)
    # A model image built for this stack (source `image`); None runs the stock server image.
    model_image: pulumi.Input[str] | None = None
    # Stack outputs that only this target can give (cluster name, how to reach the endpoint, ...).
    endpoints: Callable[[ModelServer], Mapping[str, pulumi.Input[str]]] = lambda _: {}


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


def model_image(
    name: str,
    settings: Settings,
    repository: pulumi.Input[str] | None = None,
    registry: RegistryLogin | None = None,
) -> ContainerImage:
    """The model image: pushed to `repository` with `registry`, or loaded into the local daemon."""
    model = settings.model
    local_name = "tfserving-model-" + re.sub(r"[^a-z0-9]+", "-", model.name.lower()).strip("-")
    return ContainerImage(
        name,
        ContainerImageArgs(
            repository=repository if repository is not None else local_name,
            context=model.directory,
            dockerfile_inline=model_dockerfile(model, settings.server),
            registry=registry,
        ),
    )


def minikube(settings: Settings) -> Platform:
    """A laptop cluster: the current minikube context, the Service on a NodePort.

    Model source `image` builds into the Docker daemon the shell points at: run
    `eval $(minikube -p <profile> docker-env)` first, so the image lands on the minikube node.
    """
    provider = k8s.Provider("minikube", context=settings.kube_context)
    profile = settings.kube_context
    name = settings.model.name
    image = (
        model_image("tfserving-model", settings)
        if settings.model.source is ModelSource.IMAGE
        else None
    )

    def endpoints(server: ModelServer) -> dict[str, pulumi.Input[str]]:
        kubectl = pulumi.Output.format("kubectl --context {0} -n {1}", profile, server.namespace)
        found: dict[str, pulumi.Input[str]] = {
            "portForwardCommand": pulumi.Output.format(
                "{0} port-forward svc/{1} {2}:{2}", kubectl, server.service_name, REST_PORT
            )
        }
        if settings.service.type is ServiceType.NODE_PORT:
            # The node port may be assigned by Kubernetes, so ask the cluster rather than guess.
            found["predictUrlCommand"] = pulumi.Output.format(
                'echo "http://$(minikube -p {0} ip):$({1} get svc {2} '
                "-o jsonpath='{{.spec.ports[?(@.name==\"http\")].nodePort}}')"
                '/v1/models/{3}:predict"',
                profile,
                kubectl,
                server.service_name,
                name,
            )
        if image is not None:
            found["imageRef"] = image.ref
        return found

    return Platform(
        provider=provider,
        model_image=image.ref if image is not None else None,
        endpoints=endpoints,
    )


def eks(settings: Settings) -> Platform:
    """An EKS cluster of its own; the model image in ECR; the Service behind an AWS NLB."""
    assert settings.cluster is not None and settings.registry is not None  # eks defaults
    cluster_name = f"{pulumi.get_project()}-{pulumi.get_stack()}"
    cluster = EksCluster(
        "tfserving", EksClusterArgs(cluster_name=cluster_name, settings=settings.cluster)
    )
    registry = image = None
    if settings.model.source is ModelSource.IMAGE:
        registry = ImageRegistry("tfserving-model", ImageRegistryArgs(settings.registry))
        image = model_image("tfserving-model", settings, registry.repository_url, registry.login())
    load_balancer = settings.service.type is ServiceType.LOAD_BALANCER
    region = pulumi.Config("aws").get("region")
    region_flag = f"--region {region} " if region else ""
    name = settings.model.name

    def endpoints(server: ModelServer) -> dict[str, pulumi.Input[str]]:
        found: dict[str, pulumi.Input[str]] = {
            "clusterName": cluster_name,
            "kubeconfig": cluster.kubeconfig,
            "kubeconfigCommand": f"aws eks update-kubeconfig {region_flag}--name {cluster_name}",
        }
        if registry is not None and image is not None:
            found["repositoryUrl"] = registry.repository_url
            found["imageRef"] = image.ref
        if load_balancer:
            host = server.service.status.apply(_load_balancer_hostname)
            found["loadBalancerHostname"] = host
            found["restUrl"] = pulumi.Output.format(
                "http://{0}:{1}/v1/models/{2}", host, REST_PORT, name
            )
            found["predictUrl"] = pulumi.Output.format(
                "http://{0}:{1}/v1/models/{2}:predict", host, REST_PORT, name
            )
            found["grpcExternalAddress"] = pulumi.Output.format("{0}:{1}", host, GRPC_PORT)
        return found

    return Platform(
        provider=cluster.provider,
        # Every Kubernetes object waits for these, so destroy removes the objects (and the load
        # balancer a LoadBalancer Service owns) while nodes and cluster are still there.
        depends_on=[*cluster.node_groups, cluster.metrics_server],
        service_annotations=NLB_ANNOTATIONS if load_balancer else {},
        model_image=image.ref if image is not None else None,
        endpoints=endpoints,
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
