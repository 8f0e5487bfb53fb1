"""EKS compute, GPUs, versions and AWS names: each mistake exits 2 at render, naming the key."""

from typing import Any

import pytest

from tests.config.support import CLUSTER, SERVER, render_expecting_error
from tests.conftest import eks_config, merged

GPU_GROUP = {
    "name": "gpu",
    "instanceTypes": ["g5.xlarge"],
    "gpu": True,
    "minSize": 0,
    "desiredSize": 0,
    "maxSize": 2,
}
CPU_GROUP = {"name": "cpu", "instanceTypes": ["m5.large"], "minSize": 1, "desiredSize": 1}
GPU_SERVER = {"gpu": 1, "image": "tensorflow/serving:2.20.0-gpu"}

BAD: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "instance-type-typo",
        {CLUSTER: {"nodeGroups": [{**CPU_GROUP, "instanceTypes": ["m5.lrage"]}]}},
        [
            "tfserving:cluster.nodeGroups[0].instanceTypes[0] is not an EC2 instance type, got "
            "'m5.lrage'; did you mean m5.large?"
        ],
    ),
    (
        "gpu-family-without-gpu-settings",
        {CLUSTER: {"nodeGroups": [{**CPU_GROUP, "instanceTypes": ["g4dn.xlarge"]}]}},
        [
            "tfserving:cluster.nodeGroups[0].instanceTypes[0] g4dn.xlarge is a GPU instance type "
            "(g4dn): set gpu: true"
        ],
    ),
    (
        "gpu-flag-on-a-cpu-type",
        {CLUSTER: {"nodeGroups": [CPU_GROUP, {**GPU_GROUP, "instanceTypes": ["m5.large"]}]}},
        ["tfserving:cluster.nodeGroups[1].instanceTypes[0] m5.large has no NVIDIA GPU"],
    ),
    (
        "accelerator-tf-serving-cannot-use",
        {CLUSTER: {"nodeGroups": [{**CPU_GROUP, "instanceTypes": ["inf2.xlarge"]}]}},
        ["tfserving:cluster.nodeGroups[0].instanceTypes[0] inf2.xlarge's accelerator is not"],
    ),
    (
        "server-gpu-without-a-gpu-group",
        {SERVER: GPU_SERVER},
        ["tfserving:server.gpu is 1 but no node group has GPUs"],
    ),
    (
        "gpu-group-without-server-gpu",
        {CLUSTER: {"nodeGroups": [CPU_GROUP, GPU_GROUP]}},
        ["tfserving:cluster.nodeGroups[1].gpu is true but nothing asks for a GPU"],
    ),
    (
        "cpu-image-with-gpus",
        {
            SERVER: {"gpu": 1, "image": "tensorflow/serving:2.20.0"},
            CLUSTER: {"nodeGroups": [CPU_GROUP, GPU_GROUP]},
        },
        ["tfserving:server.image must be a TF Serving GPU image when server.gpu is 1"],
    ),
    (
        "gpu-image-without-gpus",
        {SERVER: {"image": "tensorflow/serving:2.20.0-gpu"}},
        ["tfserving:server.image is a GPU image but server.gpu is 0"],
    ),
    (
        "node-groups-with-auto-mode",
        {CLUSTER: {"compute": "autoMode", "nodeGroups": [CPU_GROUP]}},
        ["tfserving:cluster.nodeGroups must not be set with compute: autoMode"],
    ),
    (
        "gpu-node-pool-in-node-groups-mode",
        {CLUSTER: {"gpuNodePool": {"maxGpus": 2}}},
        ["tfserving:cluster.gpuNodePool only applies to compute: autoMode"],
    ),
    (
        "gpu-node-pool-without-gpus",
        {CLUSTER: {"compute": "autoMode", "nodeGroups": None, "gpuNodePool": {"maxGpus": 2}}},
        ["tfserving:cluster.gpuNodePool only applies when server.gpu > 0"],
    ),
    (
        "gpu-node-pool-cpu-family",
        {
            SERVER: GPU_SERVER,
            CLUSTER: {
                "compute": "autoMode",
                "nodeGroups": None,
                "gpuNodePool": {"instanceFamilies": ["m5"]},
            },
        },
        ["tfserving:cluster.gpuNodePool.instanceFamilies must be NVIDIA GPU instance families"],
    ),
    (
        "unknown-compute",
        {CLUSTER: {"compute": "fargate"}},
        ["tfserving:cluster.compute must be one of nodeGroups, autoMode, got 'fargate'"],
    ),
    (
        "unknown-upgrade-policy",
        {CLUSTER: {"upgradePolicy": "standard"}},
        ["tfserving:cluster.upgradePolicy must be one of STANDARD, EXTENDED, got 'standard'"],
    ),
    (
        "unsupported-version",
        {CLUSTER: {"version": "1.29"}},
        ["tfserving:cluster.version must be a Kubernetes version this project supports"],
    ),
    (
        "log-retention-cloudwatch-refuses",
        {CLUSTER: {"logRetentionDays": 31}},
        ["tfserving:cluster.logRetentionDays must be a retention CloudWatch Logs accepts"],
    ),
    (
        "disk-too-small",
        {CLUSTER: {"nodeGroups": [{**CPU_GROUP, "diskSize": 8}]}},
        ["tfserving:cluster.nodeGroups[0].diskSize must be between 20 and 16384 GiB, got 8"],
    ),
    (
        "addon-version-shape",
        {CLUSTER: {"addonVersions": {"metrics-server": "latest"}}},
        ["tfserving:cluster.addonVersions metrics-server must be an EKS add-on version"],
    ),
    (
        "admin-also-viewer",
        {
            CLUSTER: {
                "adminRoleArns": ["arn:aws:iam::123456789012:role/ci"],
                "viewerRoleArns": ["arn:aws:iam::123456789012:role/ci"],
            }
        },
        ["tfserving:cluster.viewerRoleArns must not repeat an admin"],
    ),
    (
        "public-access-nobody",
        {CLUSTER: {"publicAccessCidrs": []}},
        ["tfserving:cluster.publicAccessCidrs must list at least one CIDR block"],
    ),
    (
        "region-does-not-exist",
        {"aws:region": "us-east-7"},
        ["aws:region is not an AWS region, got 'us-east-7'"],
    ),
    (
        "aws-key-typo",
        {"aws:regin": "us-east-1"},
        ["aws:regin is not a setting of the AWS provider; did you mean aws:region?"],
    ),
    (
        "kube-context-on-eks",
        {"tfserving:kubeContext": "minikube"},
        ["tfserving:kubeContext only applies to target minikube or kind, not eks"],
    ),
    (
        "too-many-gpus-per-pod",
        {SERVER: {**GPU_SERVER, "gpu": 9}},
        ["tfserving:server.gpu must be between 0 and 8 GPUs per pod, got 9"],
    ),
]


@pytest.mark.parametrize(
    ("changes", "expected"), [(c, e) for _, c, e in BAD], ids=[i for i, _, _ in BAD]
)
def test_bad_eks_compute_exits_2_naming_the_key(tmp_path, capsys, changes, expected):
    stderr = render_expecting_error(tmp_path, merged(eks_config(), changes), capsys)
    for text in expected:
        assert text in stderr


# HPA ceilings that cannot fit in the node groups at maxSize: the capacity check at preview.
CAPACITY: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "cpu-ceiling",
        {"tfserving:autoscaling": {"maxReplicas": 20}},
        [
            "tfserving:autoscaling.maxReplicas x tfserving:server.resources.requests: at their "
            "ceilings the pods need 10000m of CPU",
            "tfserving:cluster.nodeGroups[0] (4 x m5.large) at maxSize hold",
        ],
    ),
    (
        "one-pod-too-big",
        {
            SERVER: {
                "resources": {
                    "requests": {"cpu": "3", "memory": "1Gi"},
                    "limits": {"cpu": "3", "memory": "1Gi"},
                }
            }
        },
        ["one pod (3000m CPU, 1024Mi) fits on no node of tfserving:cluster.nodeGroups[0]"],
    ),
    (
        "gpus-at-the-ceiling",
        {
            SERVER: GPU_SERVER,
            "tfserving:autoscaling": {"maxReplicas": 3},
            CLUSTER: {"nodeGroups": [CPU_GROUP, GPU_GROUP]},
        },
        ["the pods need 3 of GPUs, but tfserving:cluster.nodeGroups[1] (2 x g5.xlarge)"],
    ),
]


@pytest.mark.parametrize(
    ("changes", "expected"), [(c, e) for _, c, e in CAPACITY], ids=[i for i, _, _ in CAPACITY]
)
def test_ceilings_that_cannot_fit_exit_2_naming_the_keys(tmp_path, capsys, changes, expected):
    stderr = render_expecting_error(tmp_path, merged(eks_config(), changes), capsys)
    for text in expected:
        assert text in stderr
