"""Bad EKS settings (tfserving:cluster, tfserving:registry, load balancer ranges) exit 2."""

from typing import Any

import pytest

from tests.config.support import CLUSTER, REGISTRY, SERVICE, render_expecting_error
from tests.conftest import eks_config, merged


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
        [
            "tfserving:cluster.nodeGroups[0].instanceTypes[0] is not an EC2 instance type, "
            "got 'large'"
        ],
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
        ["tfserving:cluster.adminRoleArns must not repeat an entry", "twice"],
    ),
    (
        "version-format",
        {CLUSTER: {"version": "v1.33"}},
        [
            "tfserving:cluster.version must be a Kubernetes version this project supports on EKS "
            "(1.33, 1.34, 1.35, 1.36), got 'v1.33'"
        ],
    ),
    (
        "version-unquoted",
        {CLUSTER: {"version": 1.3}},
        ['tfserving:cluster.version must be a quoted string like "1.35"', "got 1.3"],
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


@pytest.mark.parametrize(
    ("changes", "expected"),
    [(c, e) for _, c, e in EKS_BAD_CONFIGS],
    ids=[i for i, _, _ in EKS_BAD_CONFIGS],
)
def test_bad_eks_config_exits_2_naming_the_key(tmp_path, capsys, changes, expected):
    stderr = render_expecting_error(tmp_path, merged(eks_config(), changes), capsys)
    for text in expected:
        assert text in stderr
