"""Stack settings: defaults, and every rule rejecting bad config with the key path named."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

from config.cluster import CapacityType, NatGateways
from config.errors import SettingsError
from config.model import ModelSource
from config.stack import EksSettings, MinikubeSettings, parse
from config.workload import ServiceType
from tests.conftest import dev_config, eks_config, merged, write_stack
from tools.render import __main__ as render

AUTOSCALING = "tfserving:autoscaling"
SERVER = "tfserving:server"
SERVICE = "tfserving:service"
MODEL = "tfserving:model"
CLUSTER = "tfserving:cluster"
REGISTRY = "tfserving:registry"


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


def _group(**changes: Any) -> dict[str, Any]:
    base = {
        "name": "cpu",
        "instanceTypes": ["m5.large"],
        "minSize": 1,
        "desiredSize": 2,
        "maxSize": 4,
    }
    return {**base, **changes}


# The same, on top of the eks stack (Pulumi.eks.yaml).
EKS_BAD_CONFIGS: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "desired-above-max",
        {CLUSTER: {"nodeGroups": [_group(desiredSize=5)]}},
        [
            "tfserving:cluster.nodeGroups[0].desiredSize must be between minSize (1) "
            "and maxSize (4), got 5"
        ],
    ),
    (
        "desired-below-min",
        {CLUSTER: {"nodeGroups": [_group(minSize=2, desiredSize=1)]}},
        ["tfserving:cluster.nodeGroups[0].desiredSize must be between minSize (2)", "got 1"],
    ),
    (
        "max-below-min",
        {CLUSTER: {"nodeGroups": [_group(minSize=3, desiredSize=3, maxSize=2)]}},
        ["tfserving:cluster.nodeGroups[0].maxSize must be >= minSize (3)", "got 2"],
    ),
    (
        "unknown-capacity-type",
        {CLUSTER: {"nodeGroups": [_group(capacityType="RESERVED")]}},
        [
            "tfserving:cluster.nodeGroups[0].capacityType must be one of ON_DEMAND, SPOT, "
            "got 'RESERVED'"
        ],
    ),
    (
        "gpu-not-a-bool",
        {CLUSTER: {"nodeGroups": [_group(), _group(name="gpu", gpu="yes")]}},
        ["tfserving:cluster.nodeGroups[1].gpu", "boolean"],
    ),
    (
        "duplicate-node-group-names",
        {CLUSTER: {"nodeGroups": [_group(), _group(maxSize=8)]}},
        ["tfserving:cluster.nodeGroups[1].name must be unique, 'cpu' is already nodeGroups[0]"],
    ),
    (
        "node-group-not-a-k8s-name",
        {CLUSTER: {"nodeGroups": [_group(name="GPU_nodes")]}},
        ["tfserving:cluster.nodeGroups[0].name must be a valid Kubernetes name", "'GPU_nodes'"],
    ),
    (
        "no-node-groups",
        {CLUSTER: {"nodeGroups": []}},
        ["tfserving:cluster.nodeGroups must hold at least one node group"],
    ),
    (
        "only-gpu-groups",
        {CLUSTER: {"nodeGroups": [_group(instanceTypes=["g4dn.xlarge"], gpu=True)]}},
        ["tfserving:cluster.nodeGroups must include a group without gpu"],
    ),
    (
        "arm-instance-type",
        {CLUSTER: {"nodeGroups": [_group(instanceTypes=["m5.large", "m7g.large"])]}},
        ["tfserving:cluster.nodeGroups[0].instanceTypes[1] must be an x86_64 instance type"],
    ),
    (
        "not-an-instance-type",
        {CLUSTER: {"nodeGroups": [_group(instanceTypes=["large"])]}},
        ["tfserving:cluster.nodeGroups[0].instanceTypes[0] must be an EC2 instance type"],
    ),
    (
        "bad-admin-arn",
        {CLUSTER: {"adminRoleArns": ["arn:aws:iam::1234:role/ci"]}},
        [
            "tfserving:cluster.adminRoleArns[0] must be an IAM role or user ARN",
            "'arn:aws:iam::1234:role/ci'",
        ],
    ),
    (
        "repeated-admin-arn",
        {CLUSTER: {"adminRoleArns": ["arn:aws:iam::123456789012:role/ci"] * 2}},
        ["tfserving:cluster.adminRoleArns must not repeat an ARN"],
    ),
    (
        "version-format",
        {CLUSTER: {"version": "v1.33"}},
        ['tfserving:cluster.version must be a Kubernetes minor version like "1.33"', "'v1.33'"],
    ),
    (
        "version-unquoted",
        {CLUSTER: {"version": 1.3}},
        ['tfserving:cluster.version must be a quoted string like "1.33"', "got 1.3"],
    ),
    (
        "one-zone",
        {CLUSTER: {"availabilityZones": 1}},
        ["tfserving:cluster.availabilityZones must be between 2 and 6", "got 1"],
    ),
    (
        "seven-zones",
        {CLUSTER: {"availabilityZones": 7}},
        ["tfserving:cluster.availabilityZones must be between 2 and 6", "got 7"],
    ),
    (
        "unknown-nat-strategy",
        {CLUSTER: {"natGateways": "none"}},
        ["tfserving:cluster.natGateways must be one of single, onePerAz, got 'none'"],
    ),
    (
        "unknown-cluster-key",
        {CLUSTER: {"nodegroups": []}},
        ["tfserving:cluster.nodegroups is not a known setting"],
    ),
    (
        "keep-no-images",
        {REGISTRY: {"keepImages": 0}},
        [
            "tfserving:registry.keepImages must be between 1 (the running image must be kept)",
            "got 0",
        ],
    ),
    (
        "force-delete-not-a-bool",
        {REGISTRY: {"forceDelete": "yes"}},
        ["tfserving:registry.forceDelete", "boolean"],
    ),
    (
        "source-range-with-host-bits",
        {SERVICE: {"allowedSourceRanges": ["10.0.0.1/8"]}},
        ["tfserving:service.allowedSourceRanges[0] must be a CIDR block", "'10.0.0.1/8'"],
    ),
    (
        "source-range-not-a-cidr",
        {SERVICE: {"allowedSourceRanges": ["0.0.0.0/0", "everyone"]}},
        ["tfserving:service.allowedSourceRanges[1] must be a CIDR block", "'everyone'"],
    ),
    (
        "no-source-ranges",
        {SERVICE: {"allowedSourceRanges": []}},
        ["tfserving:service.allowedSourceRanges must list at least one CIDR block"],
    ),
    (
        "source-ranges-on-cluster-ip",
        {SERVICE: {"type": "ClusterIP"}},
        ["tfserving:service.allowedSourceRanges only applies to type LoadBalancer, not ClusterIP"],
    ),
]


GATEWAY = "tfserving:gateway"
GATEWAY_BAD_CONFIGS: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "gateway-unknown-key",
        {GATEWAY: {"enabled": True, "topk": 3}},
        ["tfserving:gateway.topk is not a known setting"],
    ),
    (
        "gateway-enabled-not-bool",
        {GATEWAY: {"enabled": "yes"}},
        ["tfserving:gateway.enabled", "boolean"],
    ),
    (
        "gateway-unknown-preprocessing",
        {GATEWAY: {"enabled": True, "preprocessing": "imagenet"}},
        ["tfserving:gateway.preprocessing must be one of xception, caffe, unit, none"],
    ),
    (
        "gateway-image-size",
        {GATEWAY: {"enabled": True, "imageSize": 4}},
        ["tfserving:gateway.imageSize must be between 8 and 4096 pixels, got 4"],
    ),
    (
        "gateway-top-k-above-labels",
        {GATEWAY: {"enabled": True, "labels": ["a", "b"], "topK": 3}},
        ["tfserving:gateway.topK must be <= the number of labels (2), got 3"],
    ),
    (
        "gateway-duplicate-labels",
        {GATEWAY: {"enabled": True, "labels": ["a", "a"], "topK": 1}},
        ["tfserving:gateway.labels must be unique, 'a' appears more than once"],
    ),
    (
        "gateway-labels-and-file",
        {
            GATEWAY: {
                "enabled": True,
                "labels": ["a", "b"],
                "topK": 1,
                "labelsFile": "models/shapes/labels.txt",
            }
        },
        ["tfserving:gateway.labelsFile cannot be combined with labels"],
    ),
    (
        "gateway-labels-file-missing",
        {GATEWAY: {"enabled": True, "labelsFile": "nope.txt"}},
        ["tfserving:gateway.labelsFile must be a file with one label per line"],
    ),
    (
        "gateway-latest-image",
        {GATEWAY: {"enabled": True, "image": "me/gateway:latest"}},
        ["tfserving:gateway.image must be pinned to a version, not ':latest'"],
    ),
    (
        "gateway-bad-allowlist",
        {GATEWAY: {"enabled": True, "allowedInternal": ["not a host!"]}},
        ["tfserving:gateway.allowedInternal allowlist entry 'not a host!' is neither a CIDR/IP"],
    ),
    (
        "gateway-download-cap",
        {GATEWAY: {"enabled": True, "maxDownloadBytes": 10}},
        ["tfserving:gateway.maxDownloadBytes must be between 1024"],
    ),
    (
        "gateway-node-port",
        {GATEWAY: {"enabled": True, "service": {"type": "NodePort", "nodePort": 2}}},
        ["tfserving:gateway.service.nodePort must be in the NodePort range"],
    ),
    (
        "gateway-autoscaling",
        {GATEWAY: {"enabled": True, "autoscaling": {"minReplicas": 3, "maxReplicas": 2}}},
        ["tfserving:gateway.autoscaling.maxReplicas must be >= minReplicas (3), got 2"],
    ),
    (
        "gateway-in-flight",
        {GATEWAY: {"enabled": True, "maxInFlight": 0}},
        ["tfserving:gateway.maxInFlight must be between 1 and 10000, got 0"],
    ),
]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [(c, e) for _, c, e in GATEWAY_BAD_CONFIGS],
    ids=[i for i, _, _ in GATEWAY_BAD_CONFIGS],
)
def test_bad_gateway_config_exits_2_naming_the_key(tmp_path, capsys, changes, expected):
    stderr = _render_expecting_error(tmp_path, merged(dev_config(), changes), capsys)
    for text in expected:
        assert text in stderr


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


@pytest.mark.parametrize(
    ("changes", "expected"),
    [(c, e) for _, c, e in EKS_BAD_CONFIGS],
    ids=[i for i, _, _ in EKS_BAD_CONFIGS],
)
def test_bad_eks_config_exits_2_naming_the_key(tmp_path, capsys, changes, expected):
    stderr = _render_expecting_error(tmp_path, merged(eks_config(), changes), capsys)
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
    assert isinstance(settings, MinikubeSettings) and settings.target == "minikube"
    assert settings.namespace == "tfserving"
    assert settings.model.source is ModelSource.CONFIGMAP
    assert settings.model.folder.versions == (1,)
    assert settings.server.image.startswith("tensorflow/serving:")
    assert settings.service.type is ServiceType.NODE_PORT
    assert (settings.autoscaling.min_replicas, settings.autoscaling.max_replicas) == (1, 3)


def test_dev_stack_reads_as_written():
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in dev_config().items()}
    settings = parse(config)
    assert settings.service.node_port == 30001
    assert settings.autoscaling.target_cpu_utilization == 20
    assert settings.server.resources.cpu_threads == 1


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


def _as_pulumi_config(config: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def test_eks_stack_reads_as_written():
    settings = parse(
        {k: v for k, v in _as_pulumi_config(eks_config()).items() if k.startswith("tfserving:")}
    )
    assert isinstance(settings, EksSettings)
    assert settings.model.source is ModelSource.IMAGE
    assert settings.service.type is ServiceType.LOAD_BALANCER
    assert settings.service.allowed_source_ranges == ["0.0.0.0/0"]
    assert (settings.autoscaling.min_replicas, settings.autoscaling.max_replicas) == (1, 4)
    assert settings.autoscaling.target_cpu_utilization == 60
    cluster = settings.cluster
    assert (cluster.version, cluster.availability_zones) == ("1.34", 2)
    assert cluster.nat_gateways is NatGateways.SINGLE
    (group,) = cluster.node_groups
    assert (group.name, group.instance_types, group.gpu) == ("cpu", ["m5.large"], False)
    assert (group.min_size, group.desired_size, group.max_size) == (1, 2, 4)
    assert group.capacity_type is CapacityType.ON_DEMAND
    assert cluster.admin_role_arns == []
    assert (settings.registry.force_delete, settings.registry.keep_images) == (True, 10)


def test_eks_fills_cluster_and_registry_defaults_minikube_has_none():
    eks = parse({"tfserving:target": "eks"})
    assert isinstance(eks, EksSettings)
    assert eks.cluster.node_groups[0].name == "cpu"
    assert eks.registry.keep_images == 10
    minikube = parse({})
    assert not hasattr(minikube, "cluster") and not hasattr(minikube, "registry")


def test_source_ranges_are_normalised_and_accept_ipv6():
    settings = parse(
        {
            SERVICE: json.dumps(
                {"type": "LoadBalancer", "allowedSourceRanges": ["2001:DB8::/32", "0.0.0.0/0"]}
            )
        }
    )
    assert settings.service.allowed_source_ranges == ["2001:db8::/32", "0.0.0.0/0"]
