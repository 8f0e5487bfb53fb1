"""Bad core settings: each exits 2 at render, naming the key path and what to do."""

import os
from pathlib import Path
from typing import Any

import pytest

from tests.config.support import (
    AUTOSCALING,
    CLUSTER,
    MODEL,
    REGISTRY,
    SERVER,
    SERVICE,
    render_expecting_error,
)
from tests.conftest import dev_config, merged


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
        ["tfserving:autoscaling.maxReplica is not a known setting"],
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
        ["tfserving:target must be one of minikube, eks, got 'gke'"],
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
