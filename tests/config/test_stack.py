"""Stack settings: defaults, committed stacks read as written, every problem at once."""

import json
from typing import Any

import pytest

from config.cluster import CapacityType, NatGateways
from config.errors import SettingsError
from config.model import ModelSource
from config.service import ServiceType
from config.settings import EksSettings, MinikubeSettings
from config.stack import parse
from tests.config.support import MODEL, SERVER, SERVICE
from tests.conftest import dev_config, eks_config


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
    assert settings.service.internet_facing and settings.service.open_to_internet
    assert settings.server.image == "tensorflow/serving:2.20.0" and settings.server.gpu == 0
    assert (settings.autoscaling.min_replicas, settings.autoscaling.max_replicas) == (1, 4)
    assert settings.autoscaling.target_cpu_utilization == 60
    cluster = settings.cluster
    assert (cluster.version, cluster.availability_zones) == ("1.35", 2)
    assert cluster.nat_gateways is NatGateways.SINGLE
    (group,) = cluster.node_groups
    assert (group.name, [str(t) for t in group.instance_types], group.gpu) == (
        "cpu",
        ["m5.large"],
        False,
    )
    assert (group.min_size, group.desired_size, group.max_size) == (1, 2, 4)
    assert group.capacity_type is CapacityType.ON_DEMAND
    assert cluster.admin_role_arns == [] and cluster.viewer_role_arns == []
    assert cluster.compute.value == "nodeGroups" and cluster.upgrade_policy.value == "STANDARD"
    assert (cluster.public_access_cidrs, cluster.log_retention_days) == (["0.0.0.0/0"], 30)
    assert (settings.registry.force_delete, settings.registry.keep_images) == (True, 10)


def test_eks_fills_cluster_and_registry_defaults_minikube_has_none():
    eks = parse({"tfserving:target": "eks"})
    assert isinstance(eks, EksSettings)
    assert eks.cluster.node_groups[0].name == "cpu"
    assert eks.registry.keep_images == 10
    minikube = parse({})
    assert not hasattr(minikube, "cluster") and not hasattr(minikube, "registry")


def test_source_ranges_are_normalised_and_accept_ipv6():
    service = {
        "type": "LoadBalancer",
        "scheme": "internet-facing",
        "allowedSourceRanges": ["2001:DB8::/32", "0.0.0.0/0"],
    }
    settings = parse({"tfserving:target": "eks", SERVICE: json.dumps(service)})
    assert settings.service.allowed_source_ranges == ["2001:db8::/32", "0.0.0.0/0"]
    assert settings.service.open_to_internet and not settings.service.grpc_on_service
