"""The preprocessing gateway: image in, class probabilities out, TF Serving called over gRPC.

Its own Deployment, Service and HPA, so the CPU-bound tier (download, decode, resize) scales
independently of the model server; settings reach the app as GATEWAY_* environment variables.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import workload
from components.settings import GatewaySettings

COMPONENT = "gateway"
PORT = 9696


@dataclass(frozen=True)
class GatewayArgs:
    namespace: pulumi.Input[str]
    settings: GatewaySettings
    model_name: str
    # dns:///<headless>.<ns>.svc.cluster.local:8500 so calls spread over every model-server pod.
    tf_serving_target: pulumi.Input[str]
    image: pulumi.Input[str]
    # The app.kubernetes.io/version label: the image's tag.
    version: str
    service_annotations: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()


def gateway_env(args: GatewayArgs) -> dict[str, pulumi.Input[str]]:
    """The app's environment (see gateway/README.md), all strings as a ConfigMap needs."""
    gateway = args.settings
    # os.sched_getaffinity sees the node's cores, not the pod's limit: size the pool here.
    threads = max(1, math.ceil(gateway.resources.cpu_limit_cores))
    env: dict[str, pulumi.Input[str]] = {
        "PORT": str(PORT),
        "GATEWAY_TF_SERVING_TARGET": args.tf_serving_target,
        "GATEWAY_MODEL_NAME": args.model_name,
        "GATEWAY_SIGNATURE_NAME": gateway.signature_name,
        "GATEWAY_INPUT_NAME": gateway.input_name,
        "GATEWAY_OUTPUT_NAME": gateway.output_name,
        "GATEWAY_IMAGE_SIZE": str(gateway.image_size),
        "GATEWAY_PREPROCESSING": gateway.preprocessing.value,
        "GATEWAY_SOFTMAX": str(gateway.softmax).lower(),
        "GATEWAY_TOP_K": str(gateway.top_k),
        "GATEWAY_MAX_DOWNLOAD_BYTES": str(gateway.max_download_bytes),
        "GATEWAY_DOWNLOAD_TIMEOUT_SECONDS": str(gateway.download_timeout_seconds),
        "GATEWAY_MODEL_DEADLINE_SECONDS": str(gateway.model_deadline_seconds),
        "GATEWAY_WORKER_THREADS": str(threads),
        "GATEWAY_MAX_IN_FLIGHT": str(gateway.max_in_flight),
    }
    labels = gateway.label_list
    if labels is not None:
        env["GATEWAY_LABELS"] = ",".join(labels)
    if gateway.allowed_internal:
        env["GATEWAY_ALLOWED_INTERNAL"] = ",".join(gateway.allowed_internal)
    return env


class Gateway(pulumi.ComponentResource):
    """The gateway tier: ConfigMap, Deployment, Service, HPA (and a PDB above one replica)."""

    service_name: pulumi.Output[str]
    deployment_name: pulumi.Output[str]
    hpa_name: pulumi.Output[str]
    service: k8s.core.v1.Service

    def __init__(
        self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tfserving:index:Gateway", name, None, opts)
        gateway = args.settings
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        selector = workload.selector_labels(name, COMPONENT)
        labels = workload.labels(name, COMPONENT, args.version)

        def metadata() -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels)

        env = k8s.core.v1.ConfigMap(
            f"{name}-gateway-env", metadata=metadata(), data=gateway_env(args), opts=child
        )
        deployment = k8s.apps.v1.Deployment(
            f"{name}-gateway",
            metadata=metadata(),
            spec=workload.deployment_spec(
                selector=selector,
                labels=labels,
                containers=[_container(args, env)],
                volumes=[
                    k8s.core.v1.VolumeArgs(
                        name="tmp",
                        empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi"),
                    )
                ],
                metrics_port=PORT,
                metrics_path="/metrics",
            ),
            opts=child,
        )
        self.service = workload.exposed_service(
            f"{name}-gateway",
            namespace=args.namespace,
            labels=labels,
            selector=selector,
            service=gateway.service,
            ports=[
                k8s.core.v1.ServicePortArgs(
                    name="http", port=80, target_port="http", node_port=gateway.service.node_port
                )
            ],
            load_balancer_annotations=args.service_annotations,
            opts=child,
        )
        hpa = workload.autoscale(
            f"{name}-gateway",
            deployment,
            gateway.autoscaling,
            metadata=metadata(),
            selector=selector,
            opts=child,
        )
        self.deployment_name = workload.name_of(deployment)
        self.service_name = workload.name_of(self.service)
        self.hpa_name = workload.name_of(hpa)
        self.register_outputs(
            {
                "serviceName": self.service_name,
                "deploymentName": self.deployment_name,
                "hpaName": self.hpa_name,
            }
        )


def _container(args: GatewayArgs, env: k8s.core.v1.ConfigMap) -> k8s.core.v1.ContainerArgs:
    return k8s.core.v1.ContainerArgs(
        name="gateway",
        image=args.image,
        env_from=[
            k8s.core.v1.EnvFromSourceArgs(
                config_map_ref=k8s.core.v1.ConfigMapEnvSourceArgs(name=workload.name_of(env))
            )
        ],
        ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
        resources=workload.resource_requirements(args.settings.resources),
        startup_probe=workload.http_probe("/healthz", period=2, failures=30),
        # Ready only while TF Serving reports the model AVAILABLE: no traffic to a blind gateway.
        readiness_probe=workload.http_probe("/readyz", period=5, failures=2),
        liveness_probe=workload.http_probe("/healthz", period=10, failures=3),
        security_context=workload.container_security_context(),
        volume_mounts=[k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")],
    )
