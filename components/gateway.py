"""The preprocessing gateway: image in, class probabilities out, TF Serving called over gRPC.

Its own Deployment, Service and HPA, so the CPU-bound tier (download, decode, resize) scales
independently of the model server; settings reach the app as GATEWAY_* environment variables.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import kube
from components import network_policies as netpol
from config.gateway import ApiKeys, GatewaySettings
from gateway import contract
from outputs import GATEWAY_CONTAINER_PORT, gateway_service_port

COMPONENT = "gateway"
# Fixed, so the pod template never changes with the keys: a rotation replaces this Secret's data
# (pulumi-kubernetes deletes and re-creates a named Secret whose data changes), the kubelet
# refreshes the mounted file in place and the gateway re-reads it; no pod restarts.
API_KEYS_SECRET_NAME = "tfserving-gateway-api-keys"
# What an offline render writes for keys it cannot decrypt: a key file without keys, which the
# gateway refuses at start-up (it never runs open).
ENCRYPTED_KEYS_TEXT = "# API keys: a Pulumi secret, not decrypted by the offline render\n"
METRICS_PORT = contract.METRICS_PORT.default


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
    # TF Serving's pods (by their labels): the only in-cluster destination the gateway needs.
    tf_serving_pods: Mapping[str, str] = field(default_factory=dict)
    load_balancer: kube.LoadBalancer | None = None
    # The keys clients must send (tfserving:gatewayApiKeys); None: no authentication.
    api_keys: ApiKeys | None = None
    depends_on: Sequence[pulumi.Resource] = ()


def pod_selector(name: str) -> dict[str, str]:
    """The labels that select the gateway's pods (e.g. in TF Serving's NetworkPolicy)."""
    return kube.selector_labels(name, COMPONENT)


def gateway_env(args: GatewayArgs) -> dict[str, pulumi.Input[str]]:
    """The app's environment, written through the gateway's own contract (gateway/contract.py).

    Every value is checked by the same functions the gateway runs on it at start-up; the decode
    threads follow the CPU limit, since the process sees the node's cores, not the pod's.
    """
    values = {
        **args.settings.contract_values(),
        contract.LISTEN_PORT.field: GATEWAY_CONTAINER_PORT,
        contract.MODEL_NAME.field: args.model_name,
    }
    if args.api_keys is not None:
        values[contract.API_KEYS_FILE.field] = contract.API_KEYS_FILE_PATH
    env: dict[str, pulumi.Input[str]] = dict(contract.rendered(values))
    env[contract.TF_SERVING_TARGET.env] = pulumi.Output.from_input(args.tf_serving_target).apply(
        contract.TF_SERVING_TARGET.to_env
    )
    return dict(sorted(env.items()))


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
        selector = pod_selector(name)
        labels = kube.labels(name, COMPONENT, args.version)

        def metadata() -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels)

        env = k8s.core.v1.ConfigMap(
            f"{name}-gateway-env", metadata=metadata(), data=gateway_env(args), opts=child
        )
        drain = gateway_drain(args)
        volumes = [
            k8s.core.v1.VolumeArgs(
                name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")
            )
        ]
        if args.api_keys is not None:
            keys = api_keys_secret(f"{name}-gateway-api-keys", args.api_keys, metadata(), child)
            volumes.append(
                k8s.core.v1.VolumeArgs(
                    name="api-keys",
                    secret=k8s.core.v1.SecretVolumeSourceArgs(
                        secret_name=kube.name_of(keys), default_mode=0o440
                    ),
                )
            )
        deployment = k8s.apps.v1.Deployment(
            f"{name}-gateway",
            metadata=metadata(),
            spec=kube.deployment_spec(
                selector=selector,
                labels=labels,
                containers=[_container(args, env, drain)],
                volumes=volumes,
                metrics_port=METRICS_PORT,
                metrics_path=contract.METRICS_PATH,
                termination_grace_seconds=drain.grace_seconds,
            ),
            opts=child,
        )
        self.service = kube.exposed_service(
            f"{name}-gateway",
            namespace=args.namespace,
            labels=labels,
            selector=selector,
            service=gateway.service,
            ports=[
                k8s.core.v1.ServicePortArgs(
                    name="http",
                    port=gateway_service_port(gateway.service.tls is not None),
                    target_port="http",
                    node_port=gateway.service.node_port,
                )
            ],
            load_balancer=args.load_balancer,
            opts=child,
        )
        network_policy(f"{name}-gateway", args, metadata(), selector, child)
        hpa = kube.autoscale(
            f"{name}-gateway",
            deployment,
            gateway.autoscaling,
            metadata=metadata(),
            selector=selector,
            opts=child,
        )
        self.deployment_name = kube.name_of(deployment)
        self.service_name = kube.name_of(self.service)
        self.hpa_name = kube.name_of(hpa)
        self.register_outputs(
            {
                "serviceName": self.service_name,
                "deploymentName": self.deployment_name,
                "hpaName": self.hpa_name,
            }
        )


def network_policy(
    name: str,
    args: GatewayArgs,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    selector: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """Anyone may call the gateway's HTTP port (it is the front door; API keys guard it when it
    faces the internet); only the monitoring namespaces reach its metrics port. It reaches only
    DNS, TF Serving and the images it downloads."""
    ingress = [netpol.ingress_rule(["http"], None)]
    if args.settings.metrics_namespaces:
        ingress.append(
            netpol.ingress_rule(["metrics"], netpol.namespaces(args.settings.metrics_namespaces))
        )
    return netpol.policy(
        name,
        metadata=metadata,
        selector=selector,
        ingress=ingress,
        egress=egress_rules(args),
        opts=opts,
    )


def egress_rules(
    args: GatewayArgs,
) -> list[k8s.networking.v1.NetworkPolicyEgressRuleArgs]:
    """DNS, TF Serving's gRPC port, and downloads: the public internet, plus the internal
    networks the stack allows (allowedInternal). A NetworkPolicy cannot name hosts, so allowed
    internal host names open the private ranges on the web ports; the gateway's own check still
    decides which names may be fetched."""
    allowed = args.settings.allowed_internal
    parsed = [contract.allowlist_entry(entry) for entry in allowed]
    cidrs = [str(network) for network in parsed if not isinstance(network, str)]
    rules = [
        netpol.dns_egress(),
        netpol.egress_rule([("TCP", "grpc")], [netpol.pods(args.tf_serving_pods)]),
        netpol.egress_rule(None, netpol.public_internet()),
    ]
    if cidrs:
        rules.append(netpol.egress_rule(None, netpol.networks(cidrs)))
    if len(cidrs) < len(allowed):
        rules.append(netpol.egress_rule(netpol.WEB_PORTS, netpol.networks(netpol.PRIVATE_V4)))
    return rules


def gateway_drain(args: GatewayArgs) -> kube.Drain:
    """A pause while the pod leaves the endpoints and the load balancer; then, on SIGTERM, the
    gateway stops accepting and finishes what it holds: a download and a model call at most."""
    settings = args.settings
    balancer = args.load_balancer if settings.service.load_balancer else None
    values = contract.with_defaults(settings.contract_values())
    return kube.drain(0, balancer, after_signal_seconds=contract.shutdown_seconds(values))


def api_keys_secret(
    name: str,
    keys: ApiKeys,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Secret:
    """The key file, one key per line (the gateway's format), kept secret in Pulumi's state."""
    text = ENCRYPTED_KEYS_TEXT if keys.encrypted else contract.render_api_keys(keys.keys)
    return k8s.core.v1.Secret(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=API_KEYS_SECRET_NAME, namespace=metadata.namespace, labels=metadata.labels
        ),
        type="Opaque",
        string_data={contract.API_KEYS_SECRET_KEY: pulumi.Output.secret(text)},
        opts=opts,
    )


def _container(
    args: GatewayArgs, env: k8s.core.v1.ConfigMap, drain: kube.Drain
) -> k8s.core.v1.ContainerArgs:
    return k8s.core.v1.ContainerArgs(
        name="gateway",
        image=args.image,
        env_from=[
            k8s.core.v1.EnvFromSourceArgs(
                config_map_ref=k8s.core.v1.ConfigMapEnvSourceArgs(name=kube.name_of(env))
            )
        ],
        ports=[
            k8s.core.v1.ContainerPortArgs(name="http", container_port=GATEWAY_CONTAINER_PORT),
            k8s.core.v1.ContainerPortArgs(name="metrics", container_port=METRICS_PORT),
        ],
        resources=kube.resource_requirements(args.settings.resources),
        startup_probe=kube.http_probe(contract.HEALTH_PATH, period=2, failures=30),
        # Ready only while TF Serving reports the model AVAILABLE: no traffic to a blind gateway.
        readiness_probe=kube.http_probe(contract.READY_PATH, period=5, failures=2),
        liveness_probe=kube.http_probe(contract.HEALTH_PATH, period=10, failures=3),
        lifecycle=drain.lifecycle,
        security_context=kube.container_security_context(),
        volume_mounts=_mounts(args),
    )


def _mounts(args: GatewayArgs) -> list[k8s.core.v1.VolumeMountArgs]:
    mounts = [k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")]
    if args.api_keys is not None:
        # The directory, not a subPath: subPath mounts never see the Secret's updates.
        mounts.append(
            k8s.core.v1.VolumeMountArgs(
                name="api-keys", mount_path=contract.API_KEYS_MOUNT_DIR, read_only=True
            )
        )
    return mounts
