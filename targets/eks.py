"""Target eks: an EKS cluster of its own, images in ECR, LoadBalancer Services behind AWS NLBs."""

import pulumi
import pulumi_kubernetes as k8s

from components.container_image import ContainerImage, ContainerImageArgs, ImageBuild
from components.eks_cluster import EksCluster, EksClusterArgs
from components.registry import ImageRegistry, ImageRegistryArgs
from config.stack import EksSettings
from config.workload import ServiceType
from outputs import CLUSTER_NAME, KUBECONFIG, KUBECONFIG_COMMAND
from targets.base import Exposure, Platform, url

# The AWS cloud provider's own service controller (which EKS runs in its control plane) makes a
# Network Load Balancer for this annotation: internet-facing (its default) in the subnets tagged
# kubernetes.io/role/elb, instance targets through the Service's node ports, and
# loadBalancerSourceRanges enforced as rules on the nodes' security group (an NLB keeps the
# client address). The AWS Load Balancer Controller's annotations (type external, nlb-target-type
# ip, scheme) would do nothing: that controller is not installed.
NLB_ANNOTATIONS = {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}


def eks(settings: EksSettings) -> Platform:
    """The cluster, one ECR repository per image, and NLB host names as the stack's URLs."""
    cluster_name = f"{pulumi.get_project()}-{pulumi.get_stack()}"
    cluster = EksCluster(
        "tfserving", EksClusterArgs(cluster_name=cluster_name, settings=settings.cluster)
    )
    region = pulumi.Config("aws").get("region")
    region_flag = f"--region {region} " if region else ""

    def build_image(name: str, build: ImageBuild) -> ContainerImage:
        # One repository per image: lifecycle rules and scan results stay per image.
        registry = ImageRegistry(name, ImageRegistryArgs(settings.registry))
        return ContainerImage(
            name,
            ContainerImageArgs(
                repository=registry.repository_url, build=build, registry=registry.login()
            ),
        )

    def expose(exposure: Exposure) -> dict[str, pulumi.Input[str]]:
        if exposure.service_type is not ServiceType.LOAD_BALANCER:
            return {}
        host = exposure.service.status.apply(load_balancer_hostname)
        found: dict[str, pulumi.Input[str]] = {
            output: url(endpoint, host, endpoint.port) for output, endpoint in exposure.urls.items()
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
            CLUSTER_NAME: cluster_name,
            KUBECONFIG: cluster.kubeconfig,
            KUBECONFIG_COMMAND: f"aws eks update-kubeconfig {region_flag}--name {cluster_name}",
        },
    )


def load_balancer_hostname(status: k8s.core.v1.outputs.ServiceStatus | None) -> str:
    # pulumi-kubernetes waits for a LoadBalancer Service's address before it reports success.
    ingress = status.load_balancer.ingress if status and status.load_balancer else None
    if not ingress or not (ingress[0].hostname or ingress[0].ip):
        raise ValueError("the LoadBalancer Service has no address")
    return str(ingress[0].hostname or ingress[0].ip)
