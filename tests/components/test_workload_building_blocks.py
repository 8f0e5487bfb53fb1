"""The building blocks both tiers share (components/kube.py), value by value: labels, hardened
security contexts, resources, rollout, probes, the drain on the way out, Service, Deployment,
HPA."""

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import kube
from config.service import ServiceSettings
from config.workload import AutoscalingSettings, autoscaling, resources
from tests.components.mocked import Registered, plain, register

SELECTOR = {
    "app.kubernetes.io/name": "model-server",
    "app.kubernetes.io/instance": "tfserving",
    "app.kubernetes.io/part-of": "tfserving",
}
RUNTIME_DEFAULT = {"type": "RuntimeDefault"}


def test_selector_labels_are_minimal_and_labels_add_the_rest():
    assert kube.selector_labels("tfserving", "model-server") == SELECTOR
    assert kube.labels("tfserving", "model-server", "2.20.0") == {
        **SELECTOR,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/version": "2.20.0",
        "app.kubernetes.io/managed-by": "pulumi",
    }
    # a label value holds at most 63 characters
    assert kube.labels("i", "c", "v" * 70)["app.kubernetes.io/version"] == "v" * 63


def test_pods_run_as_uid_1000_never_root():
    assert plain(kube.pod_security_context()) == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": RUNTIME_DEFAULT,
    }
    assert plain(kube.container_security_context()) == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": RUNTIME_DEFAULT,
    }


def test_requests_and_limits_with_extended_resources_in_both():
    amounts = resources(requests=("250m", "256Mi"), limits=("2", "1Gi"))
    assert plain(kube.resource_requirements(amounts)) == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }
    assert plain(kube.resource_requirements(amounts, {"nvidia.com/gpu": 2})) == {
        "requests": {"cpu": "250m", "memory": "256Mi", "nvidia.com/gpu": "2"},
        "limits": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "2"},
    }


def test_a_rollout_adds_one_pod_before_it_retires_one():
    assert plain(kube.rolling_update()) == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


def test_an_http_probe_on_the_named_port():
    assert plain(kube.http_probe("/v1/models/m", period=7, failures=4)) == {
        "httpGet": {"path": "/v1/models/m", "port": "http"},
        "periodSeconds": 7,
        "timeoutSeconds": 5,
        "failureThreshold": 4,
    }


def test_a_pod_budget_lets_one_pod_go_at_a_time():
    assert plain(kube.disruption_budget_spec({"app": "x"})) == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app": "x"}},
    }


@pytest.mark.parametrize(
    ("request_seconds", "balancer", "after", "pause", "grace"),
    [
        # endpoints propagate in 10 s, the longest request rounds up, 10 s to exit after it
        (5, None, 0, 15, 25),
        (4.2, None, 0, 15, 25),
        (0, kube.LoadBalancer({}, deregistration_seconds=20), 0, 30, 40),
        (0, kube.LoadBalancer({}), 12.5, 10, 33),
        (1, kube.LoadBalancer({}, deregistration_seconds=20), 3, 31, 44),
    ],
)
def test_the_drain_pauses_then_gives_the_process_its_time(
    request_seconds, balancer, after, pause, grace
):
    drain = kube.drain(request_seconds, balancer, after_signal_seconds=after)
    assert (drain.pause_seconds, drain.grace_seconds) == (pause, grace)
    assert plain(drain.lifecycle) == {"preStop": {"exec": {"command": ["sleep", str(pause)]}}}


def test_a_deployment_spec_is_hardened_and_leaves_replicas_to_the_hpa():
    container = k8s.core.v1.ContainerArgs(name="c", image="busybox:1.36")
    volume = k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs())
    init = k8s.core.v1.ContainerArgs(name="init", image="busybox:1.36")
    toleration = k8s.core.v1.TolerationArgs(key="k", operator="Exists", effect="NoSchedule")
    spec = kube.deployment_spec(
        selector={"app": "x"},
        labels={"app": "x", "v": "1"},
        containers=[container],
        volumes=[volume],
        metrics_port=8501,
        metrics_path="/metrics",
        node_selector={"gpu": "true"},
        tolerations=[toleration],
        init_containers=[init],
        annotations={"extra": "yes"},
        service_account="sa",
        termination_grace_seconds=40,
    )
    assert plain(spec) == {
        "selector": {"matchLabels": {"app": "x"}},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": {
                "labels": {"app": "x", "v": "1"},
                "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": "8501",
                    "prometheus.io/path": "/metrics",
                    "extra": "yes",
                },
            },
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": plain(kube.pod_security_context()),
                "serviceAccountName": "sa",
                "initContainers": [{"name": "init", "image": "busybox:1.36"}],
                "containers": [{"name": "c", "image": "busybox:1.36"}],
                "volumes": [{"name": "tmp", "emptyDir": {}}],
                "terminationGracePeriodSeconds": 40,
                "nodeSelector": {"gpu": "true"},
                "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
            },
        },
    }
    bare = plain(
        kube.deployment_spec(
            selector={"app": "x"}, labels={"app": "x"}, containers=[container], volumes=[],
            metrics_port=9696, metrics_path="/m", node_selector={},
        )
    )  # fmt: skip
    assert bare["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9696",
        "prometheus.io/path": "/m",
    }
    assert set(bare["template"]["spec"]) == {
        "automountServiceAccountToken", "securityContext", "containers", "volumes",
    }  # fmt: skip


def _deployment() -> k8s.apps.v1.Deployment:
    spec = k8s.apps.v1.DeploymentSpecArgs(
        selector=k8s.meta.v1.LabelSelectorArgs(), template=k8s.core.v1.PodTemplateSpecArgs()
    )
    return k8s.apps.v1.Deployment(
        "web", metadata=k8s.meta.v1.ObjectMetaArgs(namespace="ns"), spec=spec
    )


HPA_BEHAVIOUR = {
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 2, "periodSeconds": 30},
            {"type": "Percent", "value": 100, "periodSeconds": 30},
        ],
    },
    "scaleDown": {
        "stabilizationWindowSeconds": 120,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
    },
}


def _autoscale(settings: AutoscalingSettings) -> Registered:
    def build() -> dict[str, object]:
        deployment = _deployment()
        kube.autoscale(
            "web",
            deployment,
            settings,
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace="ns", labels={"app": "x"}),
            selector={"app": "x"},
            opts=pulumi.ResourceOptions(),
        )
        return {"deployment": kube.name_of(deployment)}

    return register(build)


def test_the_hpa_scales_the_deployment_on_cpu_fast_up_and_slowly_down():
    settings = AutoscalingSettings.model_validate(
        {
            "minReplicas": 1,
            "maxReplicas": 7,
            "targetCpuUtilization": 45,
            "scaleDownStabilizationSeconds": 120,
        }
    )
    done = _autoscale(settings)
    hpa = done.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "web")
    assert hpa["inputs"]["metadata"] == {"namespace": "ns", "labels": {"app": "x"}}
    assert hpa["inputs"]["spec"] == {
        "scaleTargetRef": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": done.outputs["deployment"],
        },
        "minReplicas": 1,
        "maxReplicas": 7,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 45},
                },
            }
        ],
        "behavior": HPA_BEHAVIOUR,
    }
    assert done.outputs["deployment"].startswith("web-")
    assert done.of("kubernetes:policy/v1:PodDisruptionBudget") == [], "one pod: nothing to keep"


def test_a_budget_keeps_pods_once_the_floor_is_two():
    done = _autoscale(autoscaling(2, 4, 60))
    budget = done.one("kubernetes:policy/v1:PodDisruptionBudget", "web")
    assert budget["inputs"] == {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"namespace": "ns", "labels": {"app": "x"}},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "x"}}},
    }


def test_an_object_without_a_name_is_an_error():
    assert kube._required_name(k8s.meta.v1.outputs.ObjectMeta(name="x-1")) == "x-1"
    with pytest.raises(ValueError, match=r"^Kubernetes object has no metadata\.name$"):
        kube._required_name(k8s.meta.v1.outputs.ObjectMeta())


def _service(
    settings: ServiceSettings, balancer: kube.LoadBalancer | None, extra: dict | None = None
) -> dict:
    def build() -> None:
        kube.exposed_service(
            "svc",
            namespace="ns",
            labels={"app": "x", "v": "1"},
            selector={"app": "x"},
            service=settings,
            ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port="http")],
            load_balancer=balancer,
            opts=pulumi.ResourceOptions(),
            annotations=extra,
        )

    return register(build).one("kubernetes:core/v1:Service", "svc")["inputs"]


PORTS = [{"name": "http", "port": 80, "targetPort": "http"}]


def test_a_node_port_service_has_no_cloud_settings():
    cloud = kube.LoadBalancer({"a": "1"}, "class", ("10.0.0.0/16",))
    inputs = _service(ServiceSettings.model_validate({}), cloud, {"extra": "x"})
    assert inputs["metadata"] == {"namespace": "ns", "labels": {"app": "x", "v": "1"}}
    assert inputs["spec"] == {"type": "NodePort", "selector": {"app": "x"}, "ports": PORTS}


def test_a_load_balancer_service_takes_the_targets_settings():
    cloud = kube.LoadBalancer({"a": "1", "b": "2"}, "eks.amazonaws.com/nlb", ("10.0.0.0/16",))
    internal = _service(ServiceSettings.model_validate({"type": "LoadBalancer"}), cloud, {"b": "3"})
    assert internal["metadata"]["annotations"] == {"a": "1", "b": "3"}
    assert internal["spec"] == {
        "type": "LoadBalancer",
        "selector": {"app": "x"},
        "ports": PORTS,
        "loadBalancerClass": "eks.amazonaws.com/nlb",
        "loadBalancerSourceRanges": ["10.0.0.0/16"],
    }
    given = ServiceSettings.model_validate(
        {
            "type": "LoadBalancer",
            "scheme": "internet-facing",
            "allowedSourceRanges": ["203.0.113.0/24"],
        }
    )
    public = _service(given, kube.LoadBalancer({"a": "1"}))
    assert public["metadata"]["annotations"] == {"a": "1"}
    assert public["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    assert "loadBalancerClass" not in public["spec"]
    everyone = ServiceSettings.model_validate({"type": "LoadBalancer"})
    assert "loadBalancerSourceRanges" not in _service(everyone, kube.LoadBalancer({}))["spec"]


def test_a_load_balancer_service_needs_the_targets_settings():
    with pytest.raises(
        ValueError, match=r"^a LoadBalancer Service needs the target's load balancer settings$"
    ):
        kube.exposed_service(
            "svc",
            namespace="ns",
            labels={},
            selector={},
            service=ServiceSettings.model_validate({"type": "LoadBalancer"}),
            ports=[],
            load_balancer=None,
            opts=pulumi.ResourceOptions(),
        )
