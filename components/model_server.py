"""TensorFlow Serving on Kubernetes: namespace, config, model files, Deployment, Services, HPA."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import kube, model_sources
from components import network_policies as netpol
from components import tfserving_config as tfs
from config.model import ModelSettings
from config.service import ModelServiceSettings, ServiceType
from config.workload import AutoscalingSettings, ServerSettings
from outputs import GRPC_PORT, REST_PORT, model_path

COMPONENT = "model-server"
# Re-exported for the model image and tests.
MODELS_ROOT = tfs.MODELS_ROOT
server_args = tfs.server_args
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = "nvidia.com/gpu.present"  # on GPU node groups and the Auto Mode GPU NodePool
# Pod Security Admission: every pod of ours already meets `restricted`; the namespace enforces it.
POD_SECURITY = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
} | {"pod-security.kubernetes.io/enforce-version": "latest"}
# What the policy pack (tfserving-grpc-not-world-open) reads as the stack's acknowledgement that a
# world-open load balancer carries TF Serving's gRPC port (service.exposeGrpcToInternet).
WORLD_GRPC_ANNOTATION = "tfserving.dev/allow-world-grpc"
# The model config keeps its name, so a label or version-policy change is an in-place update
# that TF Serving reads on its next poll, not a new ConfigMap and a rollout.
MODEL_CONFIG_NAME = "tfserving-model-config"
SERVICE_ACCOUNT_NAME = "tfserving-model-server"


@dataclass(frozen=True)
class ModelServerArgs:
    namespace: str
    models: Sequence[ModelSettings]
    server: ServerSettings
    service: ModelServiceSettings
    autoscaling: AutoscalingSettings
    # The image to run; a model image (source `image`) replaces the stock server image.
    image: pulumi.Input[str] | None = None
    # The target's settings for a LoadBalancer Service (annotations, class).
    load_balancer: kube.LoadBalancer | None = None
    # Pods (by their labels) that call TF Serving over gRPC: the gateway.
    grpc_clients: Sequence[Mapping[str, str]] = ()
    # Its own ServiceAccount (fixed name) when a model needs AWS access (Pod Identity, s3).
    service_account: bool = False
    region: str | None = None
    # The longest a request may take (the gateway's model deadline): what a rollout waits for.
    request_seconds: float = 5
    # Every object waits for these (e.g. EKS node groups), so destroy removes objects first.
    depends_on: Sequence[pulumi.Resource] = ()


def pod_selector(name: str) -> dict[str, str]:
    """The labels that select the model server's pods (the gateway's egress policy uses them)."""
    return kube.selector_labels(name, COMPONENT)


class ModelServer(pulumi.ComponentResource):
    """TF Serving for its models, exposed on gRPC 8500 and REST 8501, autoscaled on CPU."""

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
        self._labels = kube.labels(name, COMPONENT, args.server.tag)
        self._selector = pod_selector(name)

        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace, labels={**self._labels, **POD_SECURITY}
            ),
            opts=self._child,
        )
        self.namespace = kube.name_of(ns)
        first = args.models[0]
        env = self._configmap(
            f"{name}-env",
            # What the image's entrypoint reads; a model config file, when used, wins over it.
            data={
                "MODEL_NAME": first.name,
                "MODEL_BASE_PATH": tfs.base_path(first).rsplit("/", 1)[0],
            },
        )
        server_config = {"monitoring.config": tfs.monitoring_config()}
        if args.server.batching is not None and args.server.batching.enabled:
            server_config["batching.config"] = tfs.batching_parameters(
                args.server.batching, args.server
            )
        monitoring = self._configmap(f"{name}-monitoring", data=server_config)
        if tfs.uses_model_config(args.models):
            # A fixed name, so the pod template never changes with it: a new config is a
            # delete-and-create of this ConfigMap (pulumi-kubernetes replaces ConfigMaps whose
            # data changes, deleting first when the name is fixed: provider/pkg/provider/diff.go,
            # provider.go), the kubelet refreshes the mounted file and TF Serving polls it.
            k8s.core.v1.ConfigMap(
                f"{name}-model-config",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=MODEL_CONFIG_NAME, namespace=self.namespace, labels=self._labels
                ),
                data={tfs.MODEL_CONFIG_FILE: tfs.model_config(args.models)},
                opts=self._child,
            )
        if args.service_account:
            k8s.core.v1.ServiceAccount(
                f"{name}-server",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=SERVICE_ACCOUNT_NAME, namespace=self.namespace, labels=self._labels
                ),
                automount_service_account_token=False,
                opts=self._child,
            )
        models = model_sources.pod_models(
            name, args.models, self._metadata(), self._child, region=args.region
        )
        deployment = self._deployment(name, env, monitoring, models)
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

    def _drain(self) -> kube.Drain:
        """TF Serving does not drain on SIGTERM (tensorflow/serving#1853): a pause first, while
        the pod leaves the endpoints (and the load balancer's targets), lets in-flight calls
        finish and new ones go elsewhere."""
        args = self._args
        balancer = args.load_balancer if args.service.load_balancer else None
        return kube.drain(args.request_seconds, balancer)

    def _deployment(
        self,
        name: str,
        env: k8s.core.v1.ConfigMap,
        monitoring: k8s.core.v1.ConfigMap,
        models: model_sources.PodModels,
    ) -> k8s.apps.v1.Deployment:
        args = self._args
        status_path = model_path(args.models[0].name)
        mounts = [
            k8s.core.v1.VolumeMountArgs(name="config", mount_path=tfs.CONFIG_DIR, read_only=True),
            k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
            *models.mounts,
        ]
        volumes = [
            k8s.core.v1.VolumeArgs(
                name="config",
                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=kube.name_of(monitoring)),
            ),
            k8s.core.v1.VolumeArgs(
                name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")
            ),
            *models.volumes,
        ]
        if tfs.uses_model_config(args.models):
            # A directory mount (no subPath), so the kubelet refreshes the file in place.
            mounts.append(
                k8s.core.v1.VolumeMountArgs(
                    name="model-config", mount_path=tfs.MODEL_CONFIG_DIR, read_only=True
                )
            )
            volumes.append(
                k8s.core.v1.VolumeArgs(
                    name="model-config",
                    config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=MODEL_CONFIG_NAME),
                )
            )
        drain = self._drain()
        gpus = args.server.gpu
        container = k8s.core.v1.ContainerArgs(
            name="tfserving",
            image=args.image if args.image is not None else args.server.image,
            args=tfs.server_args(args.models, args.server),
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
                args.server.resources, {GPU_RESOURCE: gpus} if gpus else None
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
            lifecycle=drain.lifecycle,
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
                init_containers=models.init_containers or None,
                volumes=volumes,
                metrics_port=REST_PORT,
                metrics_path=tfs.METRICS_PATH,
                annotations=models.annotations,
                service_account=SERVICE_ACCOUNT_NAME if args.service_account else None,
                termination_grace_seconds=drain.grace_seconds,
                # GPU pods run on GPU nodes only: their label, and the taint that keeps the rest
                # (the gateway, system pods) off them.
                node_selector={GPU_NODE_LABEL: "true"} if gpus else None,
                tolerations=(
                    [
                        k8s.core.v1.TolerationArgs(
                            key=GPU_RESOURCE, operator="Exists", effect="NoSchedule"
                        )
                    ]
                    if gpus
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
            annotations=(
                {WORLD_GRPC_ANNOTATION: "true"} if service.expose_grpc_to_internet else None
            ),
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
