"""Bad core settings: each exits 2 at render, naming the key path and what to do."""

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.config.support import (
    AUTOSCALING,
    CLUSTER,
    GATEWAY,
    MODEL,
    REGISTRY,
    SERVER,
    SERVICE,
    render_expecting_error,
)
from tests.conftest import PROJECT_ROOT, dev_config, eks_config, merged, write_stack
from tools.render import __main__ as render
from tools.render import render_stack


def _resources(requests: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    return {"resources": {"requests": requests, "limits": limits}}


BAD_CONFIGS: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "unknown-top-level-key",
        {"tfserving:autoscale": {"minReplicas": 1}},
        ["tfserving:autoscale is not a known setting"],
    ),
    (
        "unknown-nested-key",
        {AUTOSCALING: {"maxReplica": 3}},
        ["tfserving:autoscaling.maxReplica is not a known setting; did you mean maxReplicas?"],
    ),
    (
        "wrong-type-string-for-int",
        {AUTOSCALING: {"minReplicas": "2"}},
        ["tfserving:autoscaling.minReplicas", "integer"],
    ),
    ("structured-key-not-a-mapping", {AUTOSCALING: 3}, ["tfserving:autoscaling", "dictionary"]),
    (
        "min-below-one",
        {AUTOSCALING: {"minReplicas": 0}},
        ["tfserving:autoscaling.minReplicas must be >= 1, got 0"],
    ),
    (
        "max-below-min",
        {AUTOSCALING: {"minReplicas": 2, "maxReplicas": 1}},
        ["tfserving:autoscaling.maxReplicas must be >= minReplicas (2), got 1"],
    ),
    (
        "cpu-target-zero",
        {AUTOSCALING: {"targetCpuUtilization": 0}},
        ["tfserving:autoscaling.targetCpuUtilization must be between 1 and 100"],
    ),
    (
        "cpu-target-above-100",
        {AUTOSCALING: {"targetCpuUtilization": 150}},
        ["tfserving:autoscaling.targetCpuUtilization", "got 150"],
    ),
    (
        "namespace-not-a-k8s-name",
        {"tfserving:namespace": "TF_Serving"},
        ["tfserving:namespace must be a valid Kubernetes name", "'TF_Serving'"],
    ),
    (
        "namespace-too-long",
        {"tfserving:namespace": "n" * 64},
        ["tfserving:namespace must be a valid Kubernetes name"],
    ),
    (
        "node-port-out-of-range",
        {SERVICE: {"nodePort": 8501}},
        ["tfserving:service.nodePort must be in the NodePort range 30000-32767, got 8501"],
    ),
    (
        "node-port-on-cluster-ip",
        {SERVICE: {"type": "ClusterIP"}},
        ["tfserving:service.nodePort only applies to type NodePort"],
    ),
    (
        "unknown-service-type",
        {SERVICE: {"type": "Ingress"}},
        ["tfserving:service.type must be one of NodePort, LoadBalancer, ClusterIP, got 'Ingress'"],
    ),
    (
        "unknown-target",
        {"tfserving:target": "gke"},
        ["tfserving:target must be one of minikube, kind, eks, got 'gke'"],
    ),
    (
        "unknown-model-source",
        {MODEL: {"source": "nfs"}},
        ["tfserving:model.source must be one of configmap, image, gcs, s3, got 'nfs'"],
    ),
    (
        "s3-source-on-minikube",
        {MODEL: {"source": "s3", "uri": "s3://bucket/models/half_plus_two", "sizeLimit": "64Mi"}},
        [
            "tfserving:model.source must not be s3 on minikube",
            "use source configmap (up to 1 MiB) or image here",
        ],
    ),
    (
        "s3-uri-for-gcs",
        {MODEL: {"source": "gcs", "uri": "s3://bucket/models/half_plus_two"}},
        ["tfserving:model.uri must be a gs:// URI for source gcs, got 's3://bucket/"],
    ),
    (
        "gcs-without-uri",
        {MODEL: {"source": "gcs", "path": None}},
        ["tfserving:model.uri is required when source is gcs"],
    ),
    ("model-name-with-slash", {MODEL: {"name": "half/plus"}}, ["tfserving:model.name"]),
    (
        "latest-image",
        {SERVER: {"image": "tensorflow/serving:latest"}},
        ["tfserving:server.image must be pinned to a version, not ':latest'"],
    ),
    (
        "untagged-image",
        {SERVER: {"image": "registry.local:5000/tensorflow/serving"}},
        ["tfserving:server.image must be pinned to a tag or digest"],
    ),
    (
        "unparseable-quantity",
        {SERVER: _resources({"cpu": "250m", "memory": "256Mi"}, {"cpu": "one", "memory": "1Gi"})},
        ["tfserving:server.resources.limits.cpu is not a Kubernetes quantity", "'one'"],
    ),
    (
        "cpu-request-above-limit",
        {SERVER: _resources({"cpu": "2", "memory": "256Mi"}, {"cpu": "1", "memory": "1Gi"})},
        ["tfserving:server.resources.requests.cpu (2) must not exceed limits.cpu (1)"],
    ),
    (
        "memory-request-above-limit",
        {SERVER: _resources({"cpu": "1", "memory": "2Gi"}, {"cpu": "1", "memory": "1500Mi"})},
        ["tfserving:server.resources.requests.memory (2Gi) must not exceed limits.memory"],
    ),
    (
        "missing-limits-memory",
        {SERVER: _resources({"cpu": "1", "memory": "1Gi"}, {"cpu": "1"})},
        ["tfserving:server.resources.limits.memory is required"],
    ),
    (
        "model-path-missing",
        {MODEL: {"path": "models/does-not-exist"}},
        ["tfserving:model.path must be a directory"],
    ),
    (
        "cluster-on-minikube",
        {CLUSTER: {"version": "1.33"}},
        ["tfserving:cluster only applies to target eks, not minikube"],
    ),
    (
        "registry-on-minikube",
        {REGISTRY: {"keepImages": 3}},
        ["tfserving:registry only applies to target eks, not minikube"],
    ),
    (
        "source-ranges-on-node-port",
        {SERVICE: {"allowedSourceRanges": ["10.0.0.0/8"]}},
        ["tfserving:service.allowedSourceRanges only applies to type LoadBalancer, not NodePort"],
    ),
    # Mistakes a new user makes (issue 12): each names the key and says the fix.
    (
        "quoted-number",
        {SERVICE: {"nodePort": "30001"}},
        [
            "tfserving:service.nodePort: input should be a valid integer, got '30001' "
            "(write 30001 without quotes)"
        ],
    ),
    (
        "quoted-boolean",
        {GATEWAY: {"enabled": "true"}},
        [
            "tfserving:gateway.enabled: input should be a valid boolean, got 'true' "
            "(write true without quotes)"
        ],
    ),
    (
        "cpu-in-millions",
        {SERVER: _resources({"cpu": "250m", "memory": "256Mi"}, {"cpu": "2M", "memory": "1Gi"})},
        [
            "tfserving:server.resources.limits.cpu must be between 1m and 256 cores "
            "(e.g. 500m, 1, 2), got '2M'"
        ],
    ),
    (
        "load-balancer-on-minikube",
        {SERVICE: {"type": "LoadBalancer", "nodePort": None}},
        [
            "tfserving:service.type must not be LoadBalancer on minikube",
            "`minikube tunnel`",
            "use NodePort",
        ],
    ),
    (
        "path-with-source-gcs",
        {MODEL: {"source": "gcs", "uri": "gs://models-bucket/serving/half_plus_two"}},
        ["tfserving:model.path only applies to sources configmap and image, not gcs"],
    ),
    (
        "gateway-block-without-enabled",
        {GATEWAY: {"imageSize": 64, "topK": 2}},
        [
            "tfserving:gateway.imageSize has no effect while gateway.enabled is false: add "
            "enabled: true"
        ],
    ),
    (
        "unknown-key-names-the-closest",
        {"tfserving:autoscalling": {"maxReplicas": 3}},
        ["tfserving:autoscalling is not a known setting; did you mean autoscaling?"],
    ),
    (
        # Pulumi reads a key without a namespace as the project's (tfserving:autoscale).
        "key-without-prefix-typo",
        {"autoscale": {"maxReplicas": 3}},
        ["tfserving:autoscale is not a known setting; did you mean autoscaling?"],
    ),
    (
        "key-with-and-without-prefix",
        {"autoscaling": {"maxReplicas": 3}},
        ["tfserving:autoscaling is given twice, as tfserving:autoscaling and as autoscaling"],
    ),
    (
        "nested-key-case-typo",
        {SERVICE: {"nodeport": 30001}},
        ["tfserving:service.nodeport is not a known setting; did you mean nodePort?"],
    ),
    (
        "nested-key-unlike-any",
        {AUTOSCALING: {"speed": "fast"}},
        ["tfserving:autoscaling.speed is not a known setting (known here: ", "maxReplicas"],
    ),
    (
        "kind-keys-on-minikube",
        {"tfserving:clusterName": "tfserving"},
        ["tfserving:clusterName only applies to target kind, not minikube"],
    ),
]


@pytest.mark.parametrize(
    ("changes", "expected"), [(c, e) for _, c, e in BAD_CONFIGS], ids=[i for i, _, _ in BAD_CONFIGS]
)
def test_bad_config_exits_2_naming_the_key(tmp_path, capsys, changes, expected):
    stderr = render_expecting_error(tmp_path, merged(dev_config(), changes), capsys)
    for text in expected:
        assert text in stderr


def _bad_model_dir(tmp_path: Path, size: int) -> str:
    (tmp_path / "model" / "latest").mkdir(parents=True)
    (tmp_path / "model" / "latest" / "saved_model.pb").write_bytes(os.urandom(size))
    return str(tmp_path / "model")


def test_model_path_without_numbered_version(tmp_path, capsys):
    changes = {MODEL: {"path": _bad_model_dir(tmp_path, 10)}}
    stderr = render_expecting_error(tmp_path, merged(dev_config(), changes), capsys)
    assert "tfserving:model.path must hold a numbered version directory" in stderr


def test_model_too_big_for_a_configmap_suggests_image(tmp_path, capsys):
    model = tmp_path / "big"
    (model / "1").mkdir(parents=True)
    (model / "1" / "saved_model.pb").write_bytes(os.urandom(1024 * 1024 + 1))
    changes = {MODEL: {"path": str(model)}}
    stderr = render_expecting_error(tmp_path, merged(dev_config(), changes), capsys)
    assert "tfserving:model.path" in stderr
    assert "too big for a ConfigMap" in stderr and "source: image" in stderr


def test_a_namespace_typo_is_reported_without_follow_on_errors(tmp_path, capsys):
    # tfsrving:target: eks: the rest is checked as the eks stack it was meant to be, not as a
    # minikube stack (which would add "aws:region only applies to target eks", and more).
    config = merged(eks_config(), {"tfserving:target": None, "tfsrving:target": "eks"})
    stderr = render_expecting_error(tmp_path, config, capsys)
    assert stderr.splitlines()[1:] == [
        "tfsrving:target is in namespace 'tfsrving', which is not this project's; "
        "did you mean tfserving:target?"
    ]


def test_keys_without_the_prefix_are_the_projects_as_in_pulumi(tmp_path):
    # What `pulumi up` reads (the project's namespace), the render reads too.
    config = merged(dev_config(), {AUTOSCALING: None})
    config["autoscaling"] = {"minReplicas": 1, "maxReplicas": 5, "targetCpuUtilization": 20}
    rendered = render_stack(write_stack(tmp_path, config))
    (hpa,) = [o for o in rendered.kubernetes_objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["spec"]["maxReplicas"] == 5


KIND_BAD_CONFIGS: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "load-balancer-on-kind",
        {SERVICE: {"type": "LoadBalancer", "nodePort": None, "exposeGrpc": None}},
        [
            "tfserving:service.type must not be LoadBalancer on kind",
            "cloud-provider-kind",
            "use NodePort",
        ],
    ),
    (
        "context-of-another-cluster",
        {"tfserving:kubeContext": "kind-other"},
        ["tfserving:kubeContext must be kind-tfserving", "got 'kind-other'", "clusterName"],
    ),
    (
        "cluster-name-kind-refuses",
        {"tfserving:clusterName": "My_Cluster"},
        ["tfserving:clusterName must be 1-40 lowercase letters, digits, '.' or '-'"],
    ),
    (
        "gpu-on-kind",
        {SERVER: {"gpu": 1, "image": "tensorflow/serving:2.20.0-gpu"}},
        ["tfserving:server.gpu only applies to target eks: kind's nodes are Docker containers"],
    ),
    (
        "s3-on-kind",
        {MODEL: {"source": "s3", "path": None, "uri": "s3://models-bucket/serving/half_plus_two"}},
        ["tfserving:model.source must not be s3 on kind"],
    ),
    (
        "eks-cluster-on-kind",
        {CLUSTER: {"version": "1.35"}},
        ["tfserving:cluster only applies to target eks, not kind"],
    ),
    (
        "aws-keys-on-kind",
        {"aws:region": "us-east-1"},
        ["aws:region only applies to target eks, not kind"],
    ),
]


def kind_config() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "Pulumi.kind.yaml").read_text())["config"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [(c, e) for _, c, e in KIND_BAD_CONFIGS],
    ids=[i for i, _, _ in KIND_BAD_CONFIGS],
)
def test_bad_kind_config_exits_2_naming_the_key(tmp_path, capsys, changes, expected):
    stderr = render_expecting_error(tmp_path, merged(kind_config(), changes), capsys)
    for text in expected:
        assert text in stderr


def test_render_cli_reports_the_twice_given_key_and_writes_nothing(tmp_path, capsys):
    stack = tmp_path / "Pulumi.twice.yaml"
    stack.write_text("config:\n  tfserving:target: minikube\n  target: minikube\n")
    assert render.main(["--stack-file", str(stack), "--out", str(tmp_path / "out")]) == 2
    assert "tfserving:target is given twice" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
