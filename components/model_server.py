"""TensorFlow Serving on Kubernetes: namespace, config, model files, Deployment, Services, HPA."""

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import kube
from components import network_policies as netpol
from config.model import ModelSettings, ModelSource
from config.service import ModelServiceSettings, ServiceType
from config.workload import AutoscalingSettings, ServerSettings
from outputs import GRPC_PORT, REST_PORT, model_path

COMPONENT = "model-server"
MODELS_ROOT = "/models"  # the image's default MODEL_BASE_PATH
CONFIG_DIR = "/etc/tfserving"
METRICS_PATH = "/monitoring/prometheus/metrics"
MONITORING_CONFIG = f'prometheus_config {{ enable: true, path: "{METRICS_PATH}" }}\n'
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = "nvidia.com/gpu.present"  # on GPU node groups and the Auto Mode GPU NodePool
# Pod Security Admission: every pod of ours already meets `restricted`; the namespace enforces it.
POD_SECURITY = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
} | {"pod-security.kubernetes.io/enforce-version": "latest"}
# What the policy pack (tfserving-grpc-not-world-open) reads as the stack's acknowledgement that a
# world-open load balancer carries TF Serving's gRPC port (service.exposeGrpcToInternet).
WORLD_GRPC_ANNOTATION = "tfserving.dev/allow-world-grpc"
# Server-side connection ageing makes round-robin clients re-resolve DNS and find new replicas.
GRPC_MAX_CONNECTION_AGE_MS = 30_000
GRPC_MAX_CONNECTION_AGE_GRACE_MS = 10_000


@dataclass(frozen=True)
class ModelServerArgs:
    namespace: str
    model: ModelSettings
    server: ServerSettings
    service: ModelServiceSettings
    autoscaling: AutoscalingSettings
    # The image to run; a model image (source `image`) replaces the stock server image.
    image: pulumi.Input[str] | None = None
    # The target's settings for a LoadBalancer Service (annotations, class).
    load_balancer: kube.LoadBalancer | None = None
    # Pods (by their labels) that call TF Serving over gRPC: the gateway.
    grpc_clients: Sequence[Mapping[str, str]] = ()
    # Every object waits for these (e.g. EKS node groups), so destroy removes objects first.
    depends_on: Sequence[pulumi.Resource] = ()


def server_args(model: ModelSettings, server: ServerSettings) -> list[str]:
    """Flags appended to the image's entrypoint (which already sets ports, name and base path)."""
    # TF Serving sizes its pools from the node's cores, not the pod's limit: pin them to the limit.
    cores = server.resources.cpu_threads
    flags = [
        f"--tensorflow_intra_op_parallelism={cores}",
        f"--tensorflow_inter_op_parallelism={cores}",
        f"--rest_api_num_threads={4 * cores}",
        f"--grpc_max_threads={4 * cores}",
        "--grpc_channel_arguments="
        f"grpc.max_connection_age_ms={GRPC_MAX_CONNECTION_AGE_MS},"
        f"grpc.max_connection_age_grace_ms={GRPC_MAX_CONNECTION_AGE_GRACE_MS}",
        f"--monitoring_config_file={CONFIG_DIR}/monitoring.config",
    ]
    if model.source is not ModelSource.GCS:
        # Files in a ConfigMap or image never change under a running pod: load once, stop polling.
        flags.append("--file_system_poll_wait_seconds=0")
    return flags


def model_base_path(model: ModelSettings) -> str:
    if model.source is ModelSource.GCS:
        assert model.uri is not None
        return model.uri.rsplit("/", 1)[0]
    return MODELS_ROOT


def pod_selector(name: str) -> dict[str, str]:
    """The labels that select the model server's pods (the gateway's egress policy uses them)."""
    return kube.selector_labels(name, COMPONENT)


class ModelServer(pulumi.ComponentResource):
    """TF Serving for one model, exposed on gRPC 8500 and REST 8501, autoscaled on CPU."""

    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]
    grpc_service_name: pulumi.Output[str]
    deployment_name: pulumi.Output[str]
    hpa_name: pulumi.Output[str]
    grpc_address: pulumi.Output[str]
    service: k8s.core.v1.Service

    def __init__(
        self, name: str, args: ModelServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tfserving:index:ModelServer", name, None, opts)
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        version = args.server.tag
        self._labels = kube.labels(name, COMPONENT, version)
        self._selector = pod_selector(name)

        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace, labels={**self._labels, **POD_SECURITY}
            ),
            opts=self._child,
        )
        self.namespace = kube.name_of(ns)
        env = self._configmap(
            f"{name}-env",
            data={"MODEL_NAME": args.model.name, "MODEL_BASE_PATH": model_base_path(args.model)},
        )
        monitoring = self._configmap(
            f"{name}-monitoring",
            data={"monitoring.config": MONITORING_CONFIG},
        )
        model_files = (
            self._model_files_configmap(f"{name}-model")
            if args.model.source is ModelSource.CONFIGMAP
            else None
        )
        deployment = self._deployment(name, env, monitoring, model_files)
        netpol.default_deny_ingress(f"{name}-default-deny", self._metadata(), self._child)
        self._network_policy(f"{name}-server")
        self.service = self._service(f"{name}-server")
        grpc_service = self._headless_grpc_service(f"{name}-grpc")
        hpa = kube.autoscale(
            f"{name}-server",
            deployment,
            args.autoscaling,
            metadata=self._metadata(),
            selector=self._selector,
            opts=self._child,
        )
        self.deployment_name = kube.name_of(deployment)
        self.service_name = kube.name_of(self.service)
        self.grpc_service_name = kube.name_of(grpc_service)
        self.hpa_name = kube.name_of(hpa)
        # dns:/// + headless Service: gRPC clients resolve every pod and balance per request.
        self.grpc_address = pulumi.Output.format(
            "dns:///{0}.{1}.svc.cluster.local:{2}",
            self.grpc_service_name,
            args.namespace,
            GRPC_PORT,
        )
        self.register_outputs(
            {
                "namespace": self.namespace,
                "serviceName": self.service_name,
                "grpcServiceName": self.grpc_service_name,
                "deploymentName": self.deployment_name,
                "hpaName": self.hpa_name,
                "grpcAddress": self.grpc_address,
            }
        )

    def _metadata(self) -> k8s.meta.v1.ObjectMetaArgs:
        # No name: Pulumi auto-names (`<logical>-<random>`), so replacements never collide.
        return k8s.meta.v1.ObjectMetaArgs(namespace=self.namespace, labels=self._labels)

    def _configmap(self, name: str, data: Mapping[str, str]) -> k8s.core.v1.ConfigMap:
        # A changed ConfigMap is replaced under a new name, which rolls the Deployment using it.
        return k8s.core.v1.ConfigMap(
            name, metadata=self._metadata(), data=dict(data), opts=self._child
        )

    def _model_files_configmap(self, name: str) -> k8s.core.v1.ConfigMap:
        binary = {
            f.configmap_key: base64.b64encode(f.source.read_bytes()).decode("ascii")
            for f in self._args.model.folder.files
        }
        return k8s.core.v1.ConfigMap(
            name, metadata=self._metadata(), binary_data=binary, opts=self._child
        )

    def _deployment(
        self,
        name: str,
        env: k8s.core.v1.ConfigMap,
        monitoring: k8s.core.v1.ConfigMap,
        model_files: k8s.core.v1.ConfigMap | None,
    ) -> k8s.apps.v1.Deployment:
        args = self._args
        status_path = model_path(args.model.name)
        mounts = [
            k8s.core.v1.VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        ]
        volumes = [
            k8s.core.v1.VolumeArgs(
                name="config",
                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=kube.name_of(monitoring)),
            ),
            k8s.core.v1.VolumeArgs(
                name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")
            ),
        ]
        if model_files is not None:
            mounts.append(
                k8s.core.v1.VolumeMountArgs(
                    name="model", mount_path=f"{MODELS_ROOT}/{args.model.name}", read_only=True
                )
            )
            volumes.append(self._model_volume(model_files))

        container = k8s.core.v1.ContainerArgs(
            name="tfserving",
            image=args.image if args.image is not None else args.server.image,
            args=server_args(args.model, args.server),
            env_from=[
                k8s.core.v1.EnvFromSourceArgs(
                    config_map_ref=k8s.core.v1.ConfigMapEnvSourceArgs(name=kube.name_of(env))
                )
            ],
            ports=[
                k8s.core.v1.ContainerPortArgs(name="grpc", container_port=GRPC_PORT),
                k8s.core.v1.ContainerPortArgs(name="http", container_port=REST_PORT),
            ],
            resources=kube.resource_requirements(
                args.server.resources,
                {GPU_RESOURCE: args.server.gpu} if args.server.gpu else None,
            ),
            # The server opens its ports only once the model is loaded: allow 5 minutes for that.
            startup_probe=kube.http_probe(status_path, period=5, failures=60),
            readiness_probe=kube.http_probe(status_path, period=10, failures=3),
            liveness_probe=k8s.core.v1.ProbeArgs(
                tcp_socket=k8s.core.v1.TCPSocketActionArgs(port="grpc"),
                period_seconds=20,
                timeout_seconds=5,
                failure_threshold=3,
            ),
            security_context=kube.container_security_context(),
            volume_mounts=mounts,
        )
        return k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata=self._metadata(),
            spec=kube.deployment_spec(
                selector=self._selector,
                labels=self._labels,
                containers=[container],
                volumes=volumes,
                metrics_port=REST_PORT,
                metrics_path=METRICS_PATH,
                # GPU pods run on GPU nodes only: their label, and the taint that keeps the rest
                # (the gateway, system pods) off them.
                node_selector={GPU_NODE_LABEL: "true"} if args.server.gpu else None,
                tolerations=(
                    [
                        k8s.core.v1.TolerationArgs(
                            key=GPU_RESOURCE, operator="Exists", effect="NoSchedule"
                        )
                    ]
                    if args.server.gpu
                    else None
                ),
            ),
            opts=self._child,
        )

    def _network_policy(self, name: str) -> k8s.networking.v1.NetworkPolicy:
        """gRPC from the gateway; what the Service exposes outside the cluster from anywhere."""
        args = self._args
        clients = [netpol.pods(selector) for selector in args.grpc_clients]
        exposed = args.service.type is not ServiceType.CLUSTER_IP
        rules = [
            netpol.ingress_rule(["http"], None if exposed else clients),
            netpol.ingress_rule(
                ["grpc"], None if exposed and args.service.grpc_on_service else clients
            ),
        ]
        return netpol.policy(
            name,
            metadata=self._metadata(),
            selector=self._selector,
            ingress=[rule for rule in rules if rule.from_ is None or clients],
            opts=self._child,
        )

    def _model_volume(self, model_files: k8s.core.v1.ConfigMap) -> k8s.core.v1.VolumeArgs:
        # ConfigMap keys are flat; items put each file back at <version>/<path> under the mount.
        return k8s.core.v1.VolumeArgs(
            name="model",
            config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                name=kube.name_of(model_files),
                default_mode=0o444,
                items=[
                    k8s.core.v1.KeyToPathArgs(key=f.configmap_key, path=f.relative_path)
                    for f in self._args.model.folder.files
                ],
            ),
        )

    def _service(self, name: str) -> k8s.core.v1.Service:
        service = self._args.service
        ports = [
            k8s.core.v1.ServicePortArgs(
                name="http", port=REST_PORT, target_port="http", node_port=service.node_port
            )
        ]
        # Off a load balancer open to the whole internet unless acknowledged (config/service.py).
        if service.grpc_on_service:
            ports.append(
                k8s.core.v1.ServicePortArgs(name="grpc", port=GRPC_PORT, target_port="grpc")
            )
        return kube.exposed_service(
            name,
            namespace=self.namespace,
            labels=self._labels,
            selector=self._selector,
            service=service,
            ports=ports,
            load_balancer=self._args.load_balancer,
            opts=self._child,
            annotations={WORLD_GRPC_ANNOTATION: "true"}
            if service.expose_grpc_to_internet
            else None,
        )

    def _headless_grpc_service(self, name: str) -> k8s.core.v1.Service:
        return k8s.core.v1.Service(
            name,
            metadata=self._metadata(),
            spec=k8s.core.v1.ServiceSpecArgs(
                cluster_ip="None",
                selector=self._selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(name="grpc", port=GRPC_PORT, target_port="grpc")
                ],
            ),
            opts=self._child,
        )
