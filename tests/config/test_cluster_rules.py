"""`tfserving:cluster` and `tfserving:registry`: node groups, Auto Mode's GPU pool, access, logs."""

from datetime import date
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from config.aws import InstanceType
from config.cluster import (
    ClusterSettings,
    Compute,
    GpuNodePoolSettings,
    KubernetesVersion,
    NodeGroupSettings,
    RegistrySettings,
    _iam_principal,
    _unique,
)
from config.errors import describe

ROLE = "arn:aws:iam::123456789012:role/admins"
USER = "arn:aws:iam::123456789012:user/ci"
GPU_GROUP = {"name": "gpu", "gpu": True, "instanceTypes": ["g5.xlarge"], "minSize": 0}


def refusals(model: type[BaseModel], data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [describe(error) for error in caught.value.errors()]


def test_iam_principals_are_role_or_user_arns():
    for arn in (ROLE, USER, "arn:aws-cn:iam::123456789012:role/path/to/ci-role"):
        assert _iam_principal(arn) == arn
    for bad in ("arn:aws:iam::12345:role/x", "arn:aws:iam::123456789012:group/x", "admins"):
        with pytest.raises(ValueError) as caught:
            _iam_principal(bad)
        assert str(caught.value) == (
            f"must be an IAM role or user ARN like arn:aws:iam::123456789012:role/NAME, got {bad!r}"
        )


def test_a_list_must_not_repeat_an_entry():
    assert _unique(["a", "b"]) == ["a", "b"]
    with pytest.raises(ValueError) as caught:
        _unique(["b", "a", "b", "a"])
    assert str(caught.value) == "must not repeat an entry, got 'a' twice"


def test_a_node_group_defaults_to_two_cpu_nodes_of_m5_large():
    group = NodeGroupSettings.model_validate({"name": "cpu"})
    assert group.instance_types == [InstanceType("m5.large")]
    assert (group.min_size, group.desired_size, group.max_size) == (1, 2, 4)
    assert (group.gpu, group.disk_size, group.root_volume_gib) == (False, None, 20)


def test_root_volumes_default_by_kind_and_may_be_given():
    assert NodeGroupSettings.model_validate(GPU_GROUP).root_volume_gib == 100
    for size in (20, 16384):
        group = NodeGroupSettings.model_validate({"name": "cpu", "diskSize": size})
        assert group.root_volume_gib == size
    assert NodeGroupSettings.model_validate({**GPU_GROUP, "diskSize": 50}).root_volume_gib == 50
    for size in (19, 16385):
        assert refusals(NodeGroupSettings, {"name": "cpu", "diskSize": size}) == [
            f"tfserving:diskSize must be between 20 and 16384 GiB, got {size}"
        ]


@pytest.mark.parametrize(
    ("types", "problem"),
    [
        ([], "must list at least one instance type, e.g. [m5.large]"),
        (["m5.large", "m5.large"], "must not repeat an instance type"),
    ],
)
def test_a_node_group_lists_distinct_instance_types(types, problem):
    assert refusals(NodeGroupSettings, {"name": "cpu", "instanceTypes": types}) == [
        f"tfserving:instanceTypes {problem}"
    ]


@pytest.mark.parametrize(
    ("sizes", "accepted"),
    [
        ({"minSize": 0, "desiredSize": 0, "maxSize": 1}, True),
        ({"minSize": 1000, "desiredSize": 1000, "maxSize": 1000}, True),
        ({"minSize": 2, "desiredSize": 2, "maxSize": 2}, True),
    ],
)
def test_node_group_sizes_at_their_edges(sizes, accepted):
    group = NodeGroupSettings.model_validate({"name": "cpu", **sizes})
    assert (group.min_size, group.desired_size, group.max_size) == tuple(sizes.values())


@pytest.mark.parametrize(
    ("sizes", "problem"),
    [
        ({"minSize": -1}, "minSize must be between 0 and 1000, got -1"),
        ({"minSize": 1001}, "minSize must be between 0 and 1000, got 1001"),
        (
            {"minSize": 0, "desiredSize": 0, "maxSize": 0},
            "maxSize must be >= minSize (0) and >= 1, and at most 1000, got 0",
        ),
        (
            {"minSize": 3, "desiredSize": 3, "maxSize": 2},
            "maxSize must be >= minSize (3) and >= 1, and at most 1000, got 2",
        ),
        (
            {"minSize": 1, "desiredSize": 1, "maxSize": 1001},
            "maxSize must be >= minSize (1) and >= 1, and at most 1000, got 1001",
        ),
        (
            {"minSize": 2, "desiredSize": 1, "maxSize": 4},
            "desiredSize must be between minSize (2) and maxSize (4), got 1",
        ),
        (
            {"minSize": 1, "desiredSize": 5, "maxSize": 4},
            "desiredSize must be between minSize (1) and maxSize (4), got 5",
        ),
    ],
)
def test_node_group_sizes_beyond_their_edges(sizes, problem):
    assert refusals(NodeGroupSettings, {"name": "cpu", **sizes}) == [f"tfserving:{problem}"]


def test_gpu_groups_have_gpu_types_only_and_cpu_groups_none():
    assert refusals(
        NodeGroupSettings, {"name": "cpu", "instanceTypes": ["m5.large", "g5.xlarge"]}
    ) == [
        "tfserving:instanceTypes[1] g5.xlarge is a GPU instance type (g5): set gpu: true on this "
        "group (NVIDIA AMI, GPU taint) and server.gpu for TF Serving, or choose a CPU type such as "
        "m5.large"
    ]
    assert refusals(
        NodeGroupSettings, {**GPU_GROUP, "instanceTypes": ["g5.xlarge", "m5.large"]}
    ) == [
        "tfserving:instanceTypes[1] m5.large has no NVIDIA GPU, but the group has gpu: true: "
        "choose "
        "an NVIDIA family (g4dn, g5, g6, g6e, p4d, p5) or drop gpu"
    ]
    assert NodeGroupSettings.model_validate(GPU_GROUP).gpu


def test_the_auto_mode_gpu_pool():
    pool = GpuNodePoolSettings.model_validate({})
    assert (pool.instance_families, pool.capacity_types, pool.max_gpus) == (
        ["g6", "g5"],
        ["on-demand"],
        4,
    )
    both = GpuNodePoolSettings.model_validate(
        {"capacityTypes": ["spot", "on-demand"], "maxGpus": 1000}
    )
    assert (both.capacity_types, both.max_gpus) == (["spot", "on-demand"], 1000)
    assert GpuNodePoolSettings.model_validate({"maxGpus": 1}).max_gpus == 1


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (
            {"instanceFamilies": []},
            "instanceFamilies must list at least one NVIDIA instance family, e.g. [g6, g5]",
        ),
        (
            {"instanceFamilies": ["g5", "g5"]},
            "instanceFamilies must not repeat an entry, got 'g5' twice",
        ),
        ({"capacityTypes": []}, "capacityTypes must list on-demand and/or spot, got []"),
        (
            {"capacityTypes": ["reserved"]},
            "capacityTypes must list on-demand and/or spot, got ['reserved']",
        ),
        (
            {"capacityTypes": ["spot", "spot"]},
            "capacityTypes must not repeat an entry, got 'spot' twice",
        ),
        ({"maxGpus": 0}, "maxGpus must be between 1 and 1000, got 0"),
        ({"maxGpus": 1001}, "maxGpus must be between 1 and 1000, got 1001"),
    ],
)
def test_the_gpu_pool_refuses(data, problem):
    assert refusals(GpuNodePoolSettings, data) == [f"tfserving:{problem}"]


def test_the_gpu_pool_names_the_families_it_knows():
    problems = refusals(GpuNodePoolSettings, {"instanceFamilies": ["g5", "m5"]})
    assert problems == [
        "tfserving:instanceFamilies must be NVIDIA GPU instance families (g4dn, g5, g6, g6e, g6f, "
        "gr6, gr6f, p3, p3dn, p4d, p4de, p5, p5e, p5en, p6-b200, p6-b300), got 'm5'"
    ]


def test_cluster_defaults_one_cpu_group_in_node_groups_mode():
    cluster = ClusterSettings.model_validate({})
    assert cluster.compute is Compute.NODE_GROUPS
    assert [g.name for g in cluster.node_groups] == ["cpu"]
    assert cluster.gpu_groups == []
    assert cluster.kubernetes == KubernetesVersion("v1.35.2", date(2027, 3, 27))
    assert cluster.public_access_cidrs == ["0.0.0.0/0"]
    given = ClusterSettings.model_validate({"nodeGroups": [{"name": "a"}, GPU_GROUP]})
    assert [g.name for g in given.node_groups] == ["a", "gpu"]
    assert [g.name for g in given.gpu_groups] == ["gpu"]


def test_auto_mode_has_no_node_groups_and_may_have_a_gpu_pool():
    auto = ClusterSettings.model_validate({"compute": "autoMode", "gpuNodePool": {"maxGpus": 2}})
    assert (auto.compute, auto.node_groups) == (Compute.AUTO_MODE, [])
    assert auto.gpu_node_pool is not None and auto.gpu_node_pool.max_gpus == 2
    assert refusals(ClusterSettings, {"compute": "autoMode", "nodeGroups": []}) == [
        "tfserving:nodeGroups must not be set with compute: autoMode (Auto Mode launches nodes "
        "for pending pods itself); remove nodeGroups or use compute: nodeGroups"
    ]
    assert refusals(ClusterSettings, {"gpuNodePool": {}}) == [
        "tfserving:gpuNodePool only applies to compute: autoMode; a GPU node group (gpu: true) "
        "does this in nodeGroups mode"
    ]
    assert refusals(ClusterSettings, {"compute": "nodeGroups", "nodeGroups": []}) == [
        "tfserving:nodeGroups must hold at least one node group"
    ]


def test_kubernetes_versions_are_quoted_supported_minors():
    assert (
        ClusterSettings.model_validate({"version": "1.33"}).kubernetes.autoscaler_image_tag
        == "v1.33.6"
    )
    assert refusals(ClusterSettings, {"version": 1.3}) == [
        'tfserving:version must be a quoted string like "1.35" (YAML reads 1.30 as the number '
        "1.3), got 1.3"
    ]
    assert refusals(ClusterSettings, {"version": 2})[0].startswith(
        'tfserving:version must be a quoted string like "1.35"'
    )
    assert refusals(ClusterSettings, {"version": "1.32"}) == [
        "tfserving:version must be a Kubernetes version this project supports on EKS "
        "(1.33, 1.34, 1.35, 1.36), got '1.32'"
    ]
    assert refusals(ClusterSettings, {"version": True}) == [
        "tfserving:version: input should be a valid string, got True (expected text)"
    ]


def test_availability_zones_from_two_to_six():
    for zones in (2, 6):
        assert (
            ClusterSettings.model_validate({"availabilityZones": zones}).availability_zones == zones
        )
    for zones in (1, 7):
        assert refusals(ClusterSettings, {"availabilityZones": zones}) == [
            "tfserving:availabilityZones must be between 2 and 6 (EKS needs subnets in at least "
            f"two availability zones), got {zones}"
        ]


def test_public_access_needs_distinct_ranges():
    assert ClusterSettings.model_validate(
        {"publicAccessCidrs": ["203.0.113.0/24"]}
    ).public_access_cidrs == ["203.0.113.0/24"]
    assert refusals(ClusterSettings, {"publicAccessCidrs": []}) == [
        "tfserving:publicAccessCidrs must list at least one CIDR block (your address: curl -s "
        "https://checkip.amazonaws.com, then <ip>/32)"
    ]
    assert refusals(ClusterSettings, {"publicAccessCidrs": ["10.0.0.0/8", "10.0.0.0/8"]}) == [
        "tfserving:publicAccessCidrs must not repeat an entry, got '10.0.0.0/8' twice"
    ]


def test_log_retention_is_a_period_cloudwatch_accepts():
    for days in (1, 30, 3653):
        assert ClusterSettings.model_validate({"logRetentionDays": days}).log_retention_days == days
    assert refusals(ClusterSettings, {"logRetentionDays": 31}) == [
        "tfserving:logRetentionDays must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, "
        "30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, "
        "3653), got 31"
    ]


def test_addon_versions_pin_the_addons_we_install():
    pins = {"metrics-server": "v0.8.0-eksbuild.1", "vpc-cni": "v1.20.1-eksbuild.3"}
    assert ClusterSettings.model_validate({"addonVersions": pins}).addon_versions == pins
    assert refusals(ClusterSettings, {"addonVersions": {"coredns": "v1.11.4-eksbuild.2"}}) == [
        "tfserving:addonVersions keys must be add-ons we install (metrics-server, "
        "eks-pod-identity-agent, vpc-cni), got 'coredns'"
    ]
    assert refusals(ClusterSettings, {"addonVersions": {"eks-pod-identity-agent": "1.3.0"}}) == [
        "tfserving:addonVersions eks-pod-identity-agent must be an EKS add-on version like "
        "v0.8.0-eksbuild.1 (aws eks describe-addon-versions --addon-name eks-pod-identity-agent), "
        "got '1.3.0'"
    ]


def test_node_group_names_are_unique_and_one_group_has_no_gpus():
    assert refusals(
        ClusterSettings, {"nodeGroups": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}
    ) == ["tfserving:nodeGroups[2].name must be unique, 'a' is already nodeGroups[0]"]
    assert refusals(ClusterSettings, {"nodeGroups": [GPU_GROUP]}) == [
        "tfserving:nodeGroups must include a group without gpu: system pods and the gateway do not "
        "tolerate the nvidia.com/gpu taint"
    ]


def test_admins_and_viewers_are_distinct_principals():
    access = ClusterSettings.model_validate({"adminRoleArns": [ROLE], "viewerRoleArns": [USER]})
    assert (access.admin_role_arns, access.viewer_role_arns) == ([ROLE], [USER])
    assert refusals(ClusterSettings, {"adminRoleArns": [ROLE, ROLE]}) == [
        f"tfserving:adminRoleArns must not repeat an entry, got {ROLE!r} twice"
    ]
    assert refusals(ClusterSettings, {"viewerRoleArns": [USER, USER]}) == [
        f"tfserving:viewerRoleArns must not repeat an entry, got {USER!r} twice"
    ]
    assert refusals(
        ClusterSettings, {"adminRoleArns": [USER, ROLE], "viewerRoleArns": [ROLE, USER]}
    ) == [
        f"tfserving:viewerRoleArns must not repeat an admin ({ROLE!r}): an admin can already read"
    ]


def test_registry_keeps_one_to_ten_thousand_images():
    registry = RegistrySettings.model_validate({})
    assert (registry.force_delete, registry.keep_images) == (True, 10)
    for keep in (1, 10_000):
        assert RegistrySettings.model_validate({"keepImages": keep}).keep_images == keep
    for keep in (0, 10_001):
        assert refusals(RegistrySettings, {"keepImages": keep}) == [
            "tfserving:keepImages must be between 1 (the running image must be kept) and 10000, "
            f"got {keep}"
        ]
