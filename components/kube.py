"""Building blocks shared by the workloads we run (model server, gateway).

Both tiers run as the same kind of hardened, autoscaled Deployment; keeping the labels, the
security contexts and the HPA shape in one place keeps them from drifting apart.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from config.service import ServiceSettings, ServiceType
from config.workload import AutoscalingSettings, Resources

PART_OF = "tfserving"
RUN_AS_USER = 1000  # the uid KServe also runs the stock tensorflow/serving image as


def selector_labels(instance: str, component: str) -> dict[str, str]:
    """Labels that identify a workload's pods; immutable on a Deployment, so keep them minimal."""
    return {
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/part-of": PART_OF,
    }


def labels(instance: str, component: str, version: str) -> dict[str, str]:
    return {
        **selector_labels(instance, component),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/version": version[:63],
        "app.kubernetes.io/managed-by": "pulumi",
    }


def pod_security_context() -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        run_as_group=RUN_AS_USER,
        fs_group=RUN_AS_USER,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security_context() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def resource_requirements(
    resources: Resources, extended: Mapping[str, int] | None = None
) -> k8s.core.v1.ResourceRequirementsArgs:
    """Requests and limits; extended resources (nvidia.com/gpu) go in both, as Kubernetes
    requires them equal."""
    extra = {key: str(count) for key, count in (extended or {}).items()}
    return k8s.core.v1.ResourceRequirementsArgs(
        requests={
            "cpu": str(resources.requests.cpu),
            "memory": str(resources.requests.memory),
            **extra,
        },
        limits={"cpu": str(resources.limits.cpu), "memory": str(resources.limits.memory), **extra},
    )


def rolling_update() -> k8s.apps.v1.DeploymentStrategyArgs:
    # Never go below the current replica count while rolling: add one new pod, then retire one.
    return k8s.apps.v1.DeploymentStrategyArgs(
        type="RollingUpdate",
        rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
    )


def cpu_autoscaler_spec(
    deployment: k8s.apps.v1.Deployment, autoscaling: AutoscalingSettings
) -> k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs:
    """autoscaling/v2 on CPU utilisation: fast to scale up, slow and stepwise to scale down."""
    return k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
        scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
            api_version="apps/v1",
            kind="Deployment",
            name=name_of(deployment),
        ),
        min_replicas=autoscaling.min_replicas,
        max_replicas=autoscaling.max_replicas,
        metrics=[
            k8s.autoscaling.v2.MetricSpecArgs(
                type="Resource",
                resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                    name="cpu",
                    target=k8s.autoscaling.v2.MetricTargetArgs(
                        type="Utilization",
                        average_utilization=autoscaling.target_cpu_utilization,
                    ),
                ),
            )
        ],
        behavior=k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
            scale_up=k8s.autoscaling.v2.HPAScalingRulesArgs(
                stabilization_window_seconds=0,
                select_policy="Max",
                policies=[
                    k8s.autoscaling.v2.HPAScalingPolicyArgs(
                        type="Pods", value=2, period_seconds=30
                    ),
                    k8s.autoscaling.v2.HPAScalingPolicyArgs(
                        type="Percent", value=100, period_seconds=30
                    ),
                ],
            ),
            scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(
                stabilization_window_seconds=autoscaling.scale_down_stabilization_seconds,
                select_policy="Max",
                policies=[
                    k8s.autoscaling.v2.HPAScalingPolicyArgs(
                        type="Percent", value=50, period_seconds=60
                    )
                ],
            ),
        ),
    )


def disruption_budget_spec(
    selector: Mapping[str, str],
) -> k8s.policy.v1.PodDisruptionBudgetSpecArgs:
    # One pod at a time may be evicted by node drains; the HPA floor protects the rest.
    return k8s.policy.v1.PodDisruptionBudgetSpecArgs(
        max_unavailable=1,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
    )


def name_of(resource: pulumi.CustomResource) -> pulumi.Output[str]:
    """The real (auto-generated) metadata.name of a Kubernetes object."""
    metadata: pulumi.Output[k8s.meta.v1.outputs.ObjectMeta] = resource.metadata  # type: ignore[attr-defined]
    return metadata.apply(_required_name)


def _required_name(metadata: k8s.meta.v1.outputs.ObjectMeta) -> str:
    # Set by the provider (auto-naming) once the object exists; absent only on a broken engine.
    if metadata.name is None:
        raise ValueError("Kubernetes object has no metadata.name")
    return metadata.name


def http_probe(path: str, period: int, failures: int) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port="http"),
        period_seconds=period,
        timeout_seconds=5,
        failure_threshold=failures,
    )


@dataclass(frozen=True)
class LoadBalancer:
    """What a target needs on a LoadBalancer Service to make the cloud load balancer asked for."""

    annotations: Mapping[str, str]
    load_balancer_class: str | None = None
    # Who may reach it when the stack lists no source ranges (an internal one: the VPC).
    default_source_ranges: tuple[str, ...] = ()
    # How long it takes a removed pod to stop getting new connections from it (pod-IP targets
    # deregister from the load balancer; node-port targets stay, kube-proxy re-routes).
    deregistration_seconds: int = 0


# kube-proxy and the endpoint controllers take a few seconds to drop a terminating pod.
ENDPOINT_PROPAGATION_SECONDS = 10
EXIT_SECONDS = 10  # after the pause and the last request: time to exit before SIGKILL


@dataclass(frozen=True)
class Drain:
    """A pod's way out without dropping requests: a pause before SIGTERM, then a grace period."""

    pause_seconds: int
    grace_seconds: int

    @property
    def lifecycle(self) -> k8s.core.v1.LifecycleArgs:
        # An exec sleep (both images have /bin/sleep): the sleep action is newer than 1.30.
        return k8s.core.v1.LifecycleArgs(
            pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                exec_=k8s.core.v1.ExecActionArgs(command=["sleep", str(self.pause_seconds)])
            )
        )


def drain(
    request_seconds: float, load_balancer: LoadBalancer | None, after_signal_seconds: float = 0
) -> Drain:
    """Pause while the pod leaves the endpoints and load balancer and in-flight requests end;
    the grace period adds what the process itself needs after SIGTERM."""
    deregistration = load_balancer.deregistration_seconds if load_balancer else 0
    pause = ENDPOINT_PROPAGATION_SECONDS + deregistration + math.ceil(request_seconds)
    return Drain(pause, pause + math.ceil(after_signal_seconds) + EXIT_SECONDS)


def exposed_service(
    name: str,
    *,
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    service: ServiceSettings,
    ports: list[k8s.core.v1.ServicePortArgs],
    load_balancer: LoadBalancer | None,
    opts: pulumi.ResourceOptions,
    annotations: Mapping[str, str] | None = None,
) -> k8s.core.v1.Service:
    """A workload's Service as configured; cloud load-balancer settings only on LoadBalancer."""
    cloud = load_balancer if service.type is ServiceType.LOAD_BALANCER else None
    if service.type is ServiceType.LOAD_BALANCER and cloud is None:
        raise ValueError("a LoadBalancer Service needs the target's load balancer settings")
    return k8s.core.v1.Service(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            namespace=namespace,
            labels=dict(labels),
            annotations={**cloud.annotations, **(annotations or {})} if cloud else None,
        ),
        spec=k8s.core.v1.ServiceSpecArgs(
            type=service.type.value,
            selector=dict(selector),
            ports=ports,
            load_balancer_class=cloud.load_balancer_class if cloud else None,
            load_balancer_source_ranges=(
                (service.allowed_source_ranges or list(cloud.default_source_ranges) or None)
                if cloud
                else None
            ),
        ),
        opts=opts,
    )


def deployment_spec(
    *,
    selector: Mapping[str, str],
    labels: Mapping[str, str],
    containers: list[k8s.core.v1.ContainerArgs],
    volumes: list[k8s.core.v1.VolumeArgs],
    metrics_port: int,
    metrics_path: str,
    node_selector: Mapping[str, str] | None = None,
    tolerations: list[k8s.core.v1.TolerationArgs] | None = None,
    init_containers: list[k8s.core.v1.ContainerArgs] | None = None,
    annotations: Mapping[str, str] | None = None,
    service_account: str | None = None,
    termination_grace_seconds: int | None = None,
) -> k8s.apps.v1.DeploymentSpecArgs:
    """A hardened, Prometheus-annotated Deployment spec that never goes below its replica count."""
    return k8s.apps.v1.DeploymentSpecArgs(
        # No replicas: the HPA owns the count; setting it here would fight every update.
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
        strategy=rolling_update(),
        revision_history_limit=5,
        template=k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(
                labels=dict(labels),
                annotations={
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(metrics_port),
                    "prometheus.io/path": metrics_path,
                    **(annotations or {}),
                },
            ),
            spec=k8s.core.v1.PodSpecArgs(
                automount_service_account_token=False,
                security_context=pod_security_context(),
                service_account_name=service_account,
                init_containers=init_containers,
                containers=containers,
                volumes=volumes,
                termination_grace_period_seconds=termination_grace_seconds,
                node_selector=dict(node_selector) if node_selector else None,
                tolerations=tolerations,
            ),
        ),
    )


def autoscale(
    name: str,
    deployment: k8s.apps.v1.Deployment,
    autoscaling: AutoscalingSettings,
    *,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    selector: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
    """The HPA for a Deployment, plus a PodDisruptionBudget once it keeps more than one pod."""
    hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
        name, metadata=metadata, spec=cpu_autoscaler_spec(deployment, autoscaling), opts=opts
    )
    if autoscaling.min_replicas > 1:
        k8s.policy.v1.PodDisruptionBudget(
            name, metadata=metadata, spec=disruption_budget_spec(selector), opts=opts
        )
    return hpa
