"""The model server as rendered from the real program, with Pulumi's auto-naming emulated."""

import base64
from pathlib import Path

from components.model_server import server_args
from config.stack import parse
from tests.conftest import PROJECT_ROOT, objects_of, one

MODEL_DIR = PROJECT_ROOT / "models" / "half_plus_two"


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
    assert service["spec"]["selector"].items() <= pod_labels.items()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["http"]["port"] == 8501 and ports["http"]["nodePort"] == 30001
    assert ports["http"]["targetPort"] == "http" and ports["grpc"]["port"] == 8500
    selector = one(rendered, "Deployment")["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()


def test_headless_grpc_service_for_per_request_balancing(render_dev):
    rendered = render_dev()
    headless = one(rendered, "Service", "tfserving-grpc-")
    assert headless["spec"]["clusterIP"] == "None"
    assert rendered.outputs["grpcAddress"] == (
        f"dns:///{headless['metadata']['name']}.tfserving.svc.cluster.local:8500"
    )


def test_hpa_is_v2_on_cpu_with_the_configured_bounds(render_dev):
    hpa = one(render_dev(), "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 3)
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 20}
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_deployment_is_hardened_probed_and_rolls_safely(render_dev):
    deployment = one(render_dev(), "Deployment")
    spec = deployment["spec"]
    assert "replicas" not in spec, "the HPA owns the replica count"
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container(deployment)
    assert container["image"] == "tensorflow/serving:2.19.1"
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "grpc": 8500,
        "http": 8501,
    }
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/v1/models/half_plus_two", "port": "http"}
    assert container["livenessProbe"]["tcpSocket"] == {"port": "grpc"}
    assert security["readOnlyRootFilesystem"] is True
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
    assert labels["app.kubernetes.io/version"] == "2.19.1"


def test_server_flags_follow_the_cpu_limit_and_enable_metrics():
    settings = parse(
        {
            "tfserving:server": '{"resources": {"requests": {"cpu": "1", '
            '"memory": "1Gi"}, "limits": {"cpu": "2500m", "memory": "2Gi"}}}'
        }
    )
    flags = server_args(settings.model, settings.server)
    assert "--tensorflow_intra_op_parallelism=3" in flags
    assert "--tensorflow_inter_op_parallelism=3" in flags
    assert "--rest_api_num_threads=12" in flags and "--grpc_max_threads=12" in flags
    assert any(f.startswith("--grpc_channel_arguments=grpc.max_connection_age_ms=") for f in flags)
    assert "--monitoring_config_file=/etc/tfserving/monitoring.config" in flags


def test_monitoring_config_enables_prometheus(render_dev):
    monitoring = one(render_dev(), "ConfigMap", "tfserving-monitoring-")
    text = monitoring["data"]["monitoring.config"]
    assert "enable: true" in text and '"/monitoring/prometheus/metrics"' in text


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
    pod_labels = one(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


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


def test_load_balancer_gets_source_ranges(render_dev):
    rendered = render_dev(
        {
            "tfserving:service": {
                "type": "LoadBalancer",
                "nodePort": None,
                "allowedSourceRanges": ["10.0.0.0/8"],
            }
        }
    )
    service = one(rendered, "Service", "tfserving-server-")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]


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
