"""Stack settings: defaults, and every rule rejecting bad config with the key path named."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

from components.settings import ModelSource, ServiceType, SettingsError, Target, parse
from scripts import render
from tests.conftest import dev_config, merged, write_stack

AUTOSCALING = "tfserving:autoscaling"
SERVER = "tfserving:server"
SERVICE = "tfserving:service"
MODEL = "tfserving:model"


def _resources(requests: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    return {"resources": {"requests": requests, "limits": limits}}


# (id, config changes, text the error must contain: the key path first)
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
        ["tfserving:model.source must be one of configmap, image, gcs, got 'nfs'"],
    ),
    (
        "s3-source",
        {MODEL: {"source": "s3"}},
        ["tfserving:model.source", "removed S3 support in 2.7", "source: image"],
    ),
    (
        "s3-uri",
        {MODEL: {"source": "gcs", "uri": "s3://bucket/models/half_plus_two"}},
        ["tfserving:model.uri", "removed S3 support in 2.7", "source: image"],
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
]


def _bad_model_dir(tmp_path: Path, size: int) -> str:
    (tmp_path / "model" / "latest").mkdir(parents=True)
    (tmp_path / "model" / "latest" / "saved_model.pb").write_bytes(os.urandom(size))
    return str(tmp_path / "model")


def _render_expecting_error(tmp_path: Path, config: dict[str, Any], capsys: Any) -> str:
    out = tmp_path / "out"
    code = render.main(["--stack-file", str(write_stack(tmp_path, config)), "--out", str(out)])
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert not out.exists() or not any(out.iterdir()), "nothing may be written on bad config"
    return stderr


@pytest.mark.parametrize(
    ("changes", "expected"), [(c, e) for _, c, e in BAD_CONFIGS], ids=[i for i, _, _ in BAD_CONFIGS]
)
def test_bad_config_exits_2_naming_the_key(tmp_path, capsys, changes, expected):
    stderr = _render_expecting_error(tmp_path, merged(dev_config(), changes), capsys)
    for text in expected:
        assert text in stderr


def test_model_path_without_numbered_version(tmp_path, capsys):
    changes = {MODEL: {"path": _bad_model_dir(tmp_path, 10)}}
    stderr = _render_expecting_error(tmp_path, merged(dev_config(), changes), capsys)
    assert "tfserving:model.path must hold a numbered version directory" in stderr


def test_model_too_big_for_a_configmap_suggests_image(tmp_path, capsys):
    model = tmp_path / "big"
    (model / "1").mkdir(parents=True)
    (model / "1" / "saved_model.pb").write_bytes(os.urandom(1024 * 1024 + 1))
    changes = {MODEL: {"path": str(model)}}
    stderr = _render_expecting_error(tmp_path, merged(dev_config(), changes), capsys)
    assert "tfserving:model.path" in stderr
    assert "too big for a ConfigMap" in stderr and "source: image" in stderr


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as caught:
        parse(
            {
                "tfserving:namespace": "Bad",
                "tfserving:autoscaling": json.dumps({"minReplicas": 0, "targetCpuUtilization": 0}),
            }
        )
    assert len(caught.value.problems) == 3


def test_defaults_fill_what_the_stack_leaves_out():
    settings = parse({})
    assert settings.target is Target.MINIKUBE
    assert settings.namespace == "tfserving"
    assert settings.model.source is ModelSource.CONFIGMAP
    assert settings.model.versions == [1]
    assert settings.server.image.startswith("tensorflow/serving:")
    assert settings.service.type is ServiceType.NODE_PORT
    assert (settings.autoscaling.min_replicas, settings.autoscaling.max_replicas) == (1, 3)


def test_dev_stack_reads_as_written():
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in dev_config().items()}
    settings = parse(config)
    assert settings.service.node_port == 30001
    assert settings.autoscaling.target_cpu_utilization == 20
    assert settings.server.resources.cpu_limit_cores == 1.0


def test_digest_pinned_image_is_accepted():
    digest = "tensorflow/serving@sha256:" + "a" * 64
    settings = parse({SERVER: json.dumps({"image": digest})})
    assert settings.server.image == digest


def test_gcs_base_path_is_the_parent_of_the_model():
    settings = parse(
        {
            MODEL: json.dumps(
                {"source": "gcs", "path": None, "uri": "gs://bucket/models/half_plus_two/"}
            )
        }
    )
    assert settings.model.uri == "gs://bucket/models/half_plus_two"
