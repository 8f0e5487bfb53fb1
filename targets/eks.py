"""Target eks: an EKS cluster of its own, images in ECR, LoadBalancer Services behind AWS NLBs."""

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.container_image import ContainerImage, ContainerImageArgs, ImageBuild
from components.eks_cluster import VPC_CIDR, EksCluster, EksClusterArgs
from components.kube import LoadBalancer
from components.model_access import ModelAccess, ModelAccessArgs
from components.model_server import SERVICE_ACCOUNT_NAME
from components.registry import ImageRegistry, ImageRegistryArgs
from config.cluster import Compute, GpuNodePoolSettings
from config.errors import SettingsError
from config.model import ModelSettings, ModelSource
from config.service import ServiceSettings, ServiceType
from config.settings import EksSettings
from outputs import CLUSTER_NAME, KUBECONFIG, KUBECONFIG_COMMAND
from targets import capacity
from targets.base import Exposure, Platform, url

_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-"
# Auto Mode's NLB targets pod IPs: a terminating pod is deregistered, and connections to it
# drain for this long (the NLB default is 300 s); the pods' preStop pause covers it.
DEREGISTRATION_SECONDS = 20
_DEREGISTRATION = f"deregistration_delay.timeout_seconds={DEREGISTRATION_SECONDS}"


def cloud_provider_nlb(service: ServiceSettings, tls_ports: Sequence[str]) -> LoadBalancer:
    """compute nodeGroups: the AWS cloud provider's own service controller (in EKS's control
    plane) makes the NLB: instance targets through the node ports, `internal` by annotation,
    loadBalancerSourceRanges as rules on the nodes' security group, TLS listeners from an ACM
    certificate on the named ports (kubernetes/cloud-provider-aws, docs/service_controller.md).
    It cannot negotiate ALPN, hence no TLS on a gRPC port here (config refuses it)."""
    annotations = {_ANNOTATION + "type": "nlb"}
    if not service.internet_facing:
        annotations[_ANNOTATION + "internal"] = "true"
    if service.tls is not None:
        annotations[_ANNOTATION + "ssl-cert"] = service.tls.certificate_arn
        annotations[_ANNOTATION + "ssl-ports"] = ",".join(tls_ports)
    return LoadBalancer(annotations, default_source_ranges=_vpc_only(service))


def _vpc_only(service: ServiceSettings) -> tuple[str, ...]:
    # Without ranges Kubernetes admits everyone that can route to it; internal means the VPC.
    return () if service.internet_facing else (VPC_CIDR,)


def auto_mode_nlb(service: ServiceSettings, tls_ports: Sequence[str]) -> LoadBalancer:
    """compute autoMode: Auto Mode's load balancer controller, selected by loadBalancerClass; it
    reads the AWS Load Balancer Controller's annotations (not `type` or `internal`), targets pod
    IPs, and puts the source ranges on the NLB's own security group
    (docs.aws.amazon.com/eks/latest/userguide/auto-configure-nlb.html). ALPN HTTP2Optional: gRPC
    clients (which offer only h2) get h2, REST clients HTTP/1.1."""
    annotations = {
        _ANNOTATION + "scheme": service.scheme.value,
        _ANNOTATION + "nlb-target-type": "ip",
        _ANNOTATION + "target-group-attributes": _DEREGISTRATION,
    }
    if service.tls is not None:
        annotations[_ANNOTATION + "ssl-cert"] = service.tls.certificate_arn
        annotations[_ANNOTATION + "ssl-ports"] = ",".join(tls_ports)
        annotations[_ANNOTATION + "alpn-policy"] = "HTTP2Optional"
    return LoadBalancer(
        annotations,
        load_balancer_class="eks.amazonaws.com/nlb",
        default_source_ranges=_vpc_only(service),
        deregistration_seconds=DEREGISTRATION_SECONDS,
    )


def instance_spec(instance_type: str) -> capacity.InstanceSpec:
    """The AWS provider's instance-type data source (runs at preview too)."""
    found = aws.ec2.get_instance_type(instance_type=instance_type)
    return capacity.InstanceSpec(
        vcpus=int(found.default_vcpus),
        memory_mib=int(found.memory_size),
        gpus=sum(int(g.count) for g in (found.gpuses or [])),
        network_interfaces=int(found.maximum_network_interfaces),
        ipv4_per_interface=int(found.maximum_ipv4_addresses_per_interface),
    )


def eks(settings: EksSettings) -> Platform:
    """The cluster, one ECR repository per image, and NLB host names as the stack's URLs."""
    cluster_settings = settings.cluster
    node_groups_mode = cluster_settings.compute is Compute.NODE_GROUPS
    if node_groups_mode:
        problems = capacity.problems(settings, instance_spec)
        if problems:
            raise SettingsError(problems)
    cluster_name = f"{pulumi.get_project()}-{pulumi.get_stack()}"
    region = pulumi.Config("aws").get("region")
    gpu_pool = (
        cluster_settings.gpu_node_pool or GpuNodePoolSettings()
        if settings.server.gpu and not node_groups_mode
        else None
    )
    cluster = EksCluster(
        "tfserving",
        EksClusterArgs(
            cluster_name=cluster_name,
            settings=cluster_settings,
            region=region,
            gpu_node_pool=gpu_pool,
        ),
    )
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

    def grant_model_access(models: Sequence[ModelSettings]) -> list[pulumi.Resource]:
        """S3 models: a Pod Identity role for the model server that can read their prefixes."""
        s3 = [m for m in models if m.source is ModelSource.S3]
        if not s3:
            return []
        access = ModelAccess(
            "tfserving-models",
            ModelAccessArgs(
                cluster_name=cluster_name,
                namespace=settings.namespace,
                service_account=SERVICE_ACCOUNT_NAME,
                models=s3,
                # Pod Identity needs its agent: an add-on in nodeGroups mode, built into Auto Mode.
                depends_on=cluster.compute,
            ),
        )
        return [access]

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
        depends_on=cluster.compute,
        load_balancer=cloud_provider_nlb if node_groups_mode else auto_mode_nlb,
        grant_model_access=grant_model_access,
        region=region,
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
