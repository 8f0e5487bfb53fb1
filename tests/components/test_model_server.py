"""The model server as rendered from the real program, with Pulumi's auto-naming emulated."""

import base64
from pathlib import Path

from components.model_server import server_args
from config.stack import parse
from tests.conftest import PROJECT_ROOT, objects_of, one

MODEL_DIR = PROJECT_ROOT / "models" / "half_plus_two"
# What the model server's pods are selected by: stable across versions (Deployment selectors are
# immutable), so never the version label.
SELECTOR = {
    "app.kubernetes.io/name": "model-server",
    "app.kubernetes.io/instance": "tfserving",
    "app.kubernetes.io/part-of": "tfserving",
}


def _container(deployment):
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_dev_render_holds_the_lab_system(render_dev):
    rendered = render_dev()
    kinds = sorted(o["kind"] for o in rendered.kubernetes_objects)
    assert kinds == sorted(
        [
            "Namespace",
            "ConfigMap",
            "ConfigMap",
            "ConfigMap",
            "Service",
            "Service",
            "Deployment",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "NetworkPolicy",
        ]
    )
    assert all(
        o["metadata"].get("namespace") == "tfserving"
        for o in rendered.kubernetes_objects
        if o["kind"] != "Namespace"
    )


def test_names_are_auto_generated_and_references_use_them(render_dev):
    rendered = render_dev()
    deployment = one(rendered, "Deployment")
    env = one(rendered, "ConfigMap", "tfserving-env-")
    hpa = one(rendered, "HorizontalPodAutoscaler")
    for obj in (deployment, env, hpa):
        prefix, suffix = obj["metadata"]["name"].rsplit("-", 1)
        assert prefix.startswith("tfserving-") and len(suffix) == 8
    assert hpa["spec"]["scaleTargetRef"] == {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "name": deployment["metadata"]["name"],
    }
    (env_from,) = _container(deployment)["envFrom"]
    assert env_from["configMapRef"]["name"] == env["metadata"]["name"]
    assert env["data"] == {"MODEL_NAME": "half_plus_two", "MODEL_BASE_PATH": "/models"}


def test_service_selects_the_pods_and_exposes_rest_on_the_node_port(render_dev):
    rendered = render_dev()
    pod_labels = one(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = one(rendered, "Service", "tfserving-server-")
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["selector"] == SELECTOR
    assert one(rendered, "Deployment")["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert {k: pod_labels[k] for k in SELECTOR} == SELECTOR, "the pods carry every selector label"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8501, "targetPort": "http", "nodePort": 30001},
        {"name": "grpc", "port": 8500, "targetPort": "grpc"},
    ]


def test_headless_grpc_service_for_per_request_balancing(render_dev):
    rendered = render_dev()
    headless = one(rendered, "Service", "tfserving-grpc-")
    assert headless["spec"] == {
        "clusterIP": "None",
        "selector": SELECTOR,
        "ports": [{"name": "grpc", "port": 8500, "targetPort": "grpc"}],
    }
    assert rendered.outputs["grpcAddress"] == (
        f"dns:///{headless['metadata']['name']}.tfserving.svc.cluster.local:8500"
    )


def test_hpa_is_v2_on_cpu_with_the_configured_bounds(render_dev):
    hpa = one(render_dev(), "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 3)
    assert spec["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 20},
            },
        }
    ]
    assert spec["behavior"] == {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 2, "periodSeconds": 30},
                {"type": "Percent", "value": 100, "periodSeconds": 30},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": 300,
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
        },
    }


def test_deployment_is_hardened_probed_and_rolls_safely(render_dev):
    deployment = one(render_dev(), "Deployment")
    spec = deployment["spec"]
    assert "replicas" not in spec, "the HPA owns the replica count"
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert spec["revisionHistoryLimit"] == 5
    pod = spec["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = _container(deployment)
    assert container["image"] == "tensorflow/serving:2.20.0"
    security = container["securityContext"]
    assert security == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "grpc": 8500,
        "http": 8501,
    }
    status = {"path": "/v1/models/half_plus_two", "port": "http"}
    # Loading may take 5 minutes (60 x 5 s) before the server opens its ports.
    assert container["startupProbe"] == {
        "httpGet": status,
        "periodSeconds": 5,
        "timeoutSeconds": 5,
        "failureThreshold": 60,
    }
    assert container["readinessProbe"] == {
        "httpGet": status,
        "periodSeconds": 10,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
    }
    assert container["livenessProbe"] == {
        "tcpSocket": {"port": "grpc"},
        "periodSeconds": 20,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
    }
    assert pod["automountServiceAccountToken"] is False
    assert spec["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8501",
        "prometheus.io/path": "/monitoring/prometheus/metrics",
    }
    # The model in a ConfigMap never changes under a running pod: no file-system polling.
    assert "--file_system_poll_wait_seconds=0" in container["args"]
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "pulumi"
    assert labels["app.kubernetes.io/version"] == "2.20.0"


def test_server_flags_follow_the_cpu_limit_and_enable_metrics():
    settings = parse(
        {
            "tfserving:server": '{"resources": {"requests": {"cpu": "1", '
            '"memory": "1Gi"}, "limits": {"cpu": "2500m", "memory": "2Gi"}}}'
        }
    )
    assert server_args(settings.models, settings.server) == [
        "--tensorflow_intra_op_parallelism=3",
        "--tensorflow_inter_op_parallelism=3",
        "--rest_api_num_threads=12",
        "--grpc_max_threads=12",
        "--grpc_channel_arguments=grpc.max_connection_age_ms=30000,"
        "grpc.max_connection_age_grace_ms=10000",
        "--monitoring_config_file=/etc/tfserving/monitoring.config",
        "--file_system_poll_wait_seconds=0",
    ]


def test_a_fractional_cpu_limit_still_gets_one_thread_per_pool():
    settings = parse(
        {
            "tfserving:server": '{"resources": {"requests": {"cpu": "100m", '
            '"memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "1Gi"}}}'
        }
    )
    flags = server_args(settings.models, settings.server)
    assert flags[:4] == [
        "--tensorflow_intra_op_parallelism=1",
        "--tensorflow_inter_op_parallelism=1",
        "--rest_api_num_threads=4",
        "--grpc_max_threads=4",
    ]


def test_monitoring_config_enables_prometheus(render_dev):
    monitoring = one(render_dev(), "ConfigMap", "tfserving-monitoring-")
    assert monitoring["data"] == {
        "monitoring.config": (
            'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n'
        )
    }


def test_model_files_are_mounted_at_base_path_name_version(render_dev):
    rendered = render_dev()
    model = one(rendered, "ConfigMap", "tfserving-model-")
    deployment = one(rendered, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    items = volumes["model"]["configMap"]["items"]
    assert volumes["model"]["configMap"]["name"] == model["metadata"]["name"]
    on_disk = sorted(
        p.relative_to(MODEL_DIR).as_posix() for p in (MODEL_DIR / "1").rglob("*") if p.is_file()
    )
    assert sorted(i["path"] for i in items) == on_disk
    for item in items:
        content = base64.b64decode(model["binaryData"][item["key"]])
        assert content == (MODEL_DIR / item["path"]).read_bytes()
    mounts = {m["name"]: m for m in _container(deployment)["volumeMounts"]}
    assert mounts["model"]["mountPath"] == "/models/half_plus_two"
    assert mounts["model"]["readOnly"] is True


def test_a_changed_configmap_gets_a_new_name_so_the_deployment_rolls(render_dev, tmp_path):
    before = render_dev()
    again = render_dev()
    assert before.kubernetes_objects == again.kubernetes_objects, "renders are deterministic"
    renamed = render_dev({"tfserving:model": {"name": "half_plus_three"}})
    old_env = one(before, "ConfigMap", "tfserving-env-")["metadata"]["name"]
    new_env = one(renamed, "ConfigMap", "tfserving-env-")["metadata"]["name"]
    assert old_env != new_env
    assert _container(one(renamed, "Deployment"))["envFrom"][0]["configMapRef"]["name"] == new_env
    # Unchanged objects keep their names: no needless replacement.
    assert (
        one(before, "Deployment")["metadata"]["name"]
        == one(renamed, "Deployment")["metadata"]["name"]
    )


def test_pod_disruption_budget_only_with_more_than_one_replica(render_dev):
    assert objects_of(render_dev(), "PodDisruptionBudget") == []
    rendered = render_dev({"tfserving:autoscaling": {"minReplicas": 2, "maxReplicas": 4}})
    pdb = one(rendered, "PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": SELECTOR}}
    assert pdb["metadata"]["namespace"] == "tfserving"


def test_gcs_source_reads_the_bucket_without_a_model_configmap(render_dev):
    rendered = render_dev(
        {
            "tfserving:model": {
                "source": "gcs",
                "path": None,
                "uri": "gs://bucket/models/half_plus_two",
            }
        }
    )
    env = one(rendered, "ConfigMap", "tfserving-env-")
    assert env["data"]["MODEL_BASE_PATH"] == "gs://bucket/models"
    assert [c for c in objects_of(rendered, "ConfigMap") if "binaryData" in c] == []
    assert (
        "--file_system_poll_wait_seconds=0" not in _container(one(rendered, "Deployment"))["args"]
    )


def test_load_balancer_gets_source_ranges(render_eks):
    rendered = render_eks(
        {"tfserving:service": {"scheme": "internal", "allowedSourceRanges": ["10.0.0.0/8"]}}
    )
    service = one(rendered, "Service", "tfserving-server-")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
    internal = {"scheme": "internal", "allowedSourceRanges": None}
    unlisted = render_eks({"tfserving:service": internal})
    # An internal load balancer without ranges admits the VPC, not whoever can route to it.
    spec = one(unlisted, "Service", "tfserving-server-")["spec"]
    assert spec["loadBalancerSourceRanges"] == ["10.0.0.0/16"]


def test_every_object_is_a_child_of_the_component_on_the_cluster_provider(render_dev):
    rendered = render_dev()
    (component,) = [r for r in rendered.resources if r["type"] == "tfserving:index:ModelServer"]
    (provider,) = [r for r in rendered.resources if r["type"] == "pulumi:providers:kubernetes"]
    assert provider["inputs"]["context"] == "minikube"
    for resource in rendered.resources:
        if resource["type"].startswith("kubernetes:"):
            assert resource["parent"] == component["urn"]
            assert resource["provider"].startswith(provider["urn"] + "::")


def test_model_dir_is_read_relative_to_the_project(tmp_path: Path):
    settings = parse({"tfserving:model": '{"path": "models/half_plus_two"}'})
    assert settings.model.folder.directory == MODEL_DIR
