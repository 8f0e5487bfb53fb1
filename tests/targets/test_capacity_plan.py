"""Will the pods fit? EKS's allocatable capacity per node, the tiers at their ceilings, messages."""

import json
from decimal import Decimal
from typing import Any

import pytest

from config.stack import EksSettings, parse
from targets.capacity import InstanceSpec, Tier, _mib, _millicores, _smallest, problems, tiers

# What the AWS provider's data source says (vCPUs, MiB, GPUs, network interfaces, IPv4 each).
SPECS = {
    "m5.large": InstanceSpec(2, 8192, 0, 3, 10),
    "m5.xlarge": InstanceSpec(4, 16384, 0, 4, 15),
    "c5.large": InstanceSpec(2, 4096, 0, 3, 10),
    "t3.small": InstanceSpec(2, 2048, 0, 3, 4),
    "g5.xlarge": InstanceSpec(4, 16384, 1, 4, 15),
    "g5.12xlarge": InstanceSpec(48, 196608, 4, 8, 30),
}
GPU_GROUP = {"name": "gpu", "gpu": True, "instanceTypes": ["g5.xlarge"], "minSize": 0}


def eks(**keys: Any) -> EksSettings:
    raw = {f"tfserving:{k}": json.dumps(v) for k, v in keys.items()}
    settings = parse({"tfserving:target": "eks", **raw})
    assert isinstance(settings, EksSettings)
    return settings


def requests(cpu: str, memory: str, gpu: int = 0) -> dict[str, Any]:
    amounts = {"cpu": cpu, "memory": memory}
    server: dict[str, Any] = {"resources": {"requests": amounts, "limits": amounts}}
    return {**server, "gpu": gpu} if gpu else server


def test_pods_per_node_follow_the_vpc_cnis_formula():
    assert SPECS["m5.large"].max_pods == 29
    assert SPECS["m5.xlarge"].max_pods == 58
    assert SPECS["t3.small"].max_pods == 11


@pytest.mark.parametrize(
    ("vcpus", "millicores"),
    # EKS reserves 6% of the first core, 1% of the second, 0.5% of the third and fourth, 0.25%
    # of each further one; our DaemonSets take 200m.
    [(1, 740), (2, 1730), (3, 2725), (4, 3720), (5, 4717), (8, 7710), (48, 47610)],
)
def test_allocatable_cpu_after_eks_reservations_and_daemonsets(vcpus, millicores):
    assert InstanceSpec(vcpus, 8192, 0, 3, 10).allocatable_millicores == millicores


def test_allocatable_memory_after_kube_reserved_eviction_and_daemonsets():
    # 8192 - (255 + 11 x 29 pods) - 100 - 256
    assert SPECS["m5.large"].allocatable_mib == 7262
    assert SPECS["t3.small"].allocatable_mib == 2048 - (255 + 11 * 11) - 100 - 256


def test_requests_round_up_to_whole_millicores_and_mebibytes():
    assert _millicores(Decimal("0.2501")) == 251
    assert _millicores(Decimal(2)) == 2000
    assert _mib(Decimal(256 * 2**20)) == 256
    assert _mib(Decimal(256 * 2**20 + 1)) == 257


def test_each_tier_at_its_ceiling():
    server = tiers(eks(server=requests("500m", "1Gi"), autoscaling={"maxReplicas": 6}))
    assert server == [
        Tier(
            "tfserving:autoscaling.maxReplicas x tfserving:server.resources.requests",
            6,
            500,
            1024,
            0,
        )
    ]
    gateway = {
        "enabled": True,
        "autoscaling": {"maxReplicas": 4},
        **requests("300m", "200Mi"),
    }
    both = tiers(eks(gateway=gateway))
    assert both[1] == Tier(
        "tfserving:gateway.autoscaling.maxReplicas x tfserving:gateway.resources.requests",
        4,
        300,
        200,
        0,
    )
    assert both[0].replicas == 3 and both[0].millicores == 250 and both[0].mib == 256


def test_a_group_counts_on_its_smallest_type():
    settings = eks(
        cluster={"nodeGroups": [{"name": "mixed", "instanceTypes": ["m5.xlarge", "c5.large"]}]}
    )
    assert _smallest(settings.cluster.node_groups[0], SPECS.__getitem__) == SPECS["c5.large"]
    cpu_tie = {"name": "tie", "instanceTypes": ["m5.large", "c5.large"]}
    assert (
        _smallest(eks(cluster={"nodeGroups": [cpu_tie]}).cluster.node_groups[0], SPECS.__getitem__)
        == (
            SPECS["c5.large"]  # the same CPU, less memory
        )
    )


def test_the_defaults_fit():
    assert problems(eks(), SPECS.__getitem__) == []


def test_one_pod_too_big_for_every_node():
    settings = eks(
        server=requests("1800m", "1Gi"), cluster={"nodeGroups": [{"name": "cpu", "maxSize": 10}]}
    )
    assert problems(settings, SPECS.__getitem__) == [
        "tfserving:autoscaling.maxReplicas x tfserving:server.resources.requests: one pod (1800m "
        "CPU, 1024Mi) fits on no node of tfserving:cluster.nodeGroups[0] (10 x m5.large); ask for "
        "less or choose bigger instance types"
    ]


def test_one_pod_fits_when_it_takes_all_that_is_allocatable():
    cpu = eks(
        server=requests("1730m", "1Gi"), cluster={"nodeGroups": [{"name": "cpu", "maxSize": 4}]}
    )
    assert problems(cpu, SPECS.__getitem__) == []
    memory = eks(
        server=requests("1", "7262Mi"), cluster={"nodeGroups": [{"name": "cpu", "maxSize": 4}]}
    )
    assert problems(memory, SPECS.__getitem__) == []
    too_much = eks(
        server=requests("1", "7263Mi"), cluster={"nodeGroups": [{"name": "cpu", "maxSize": 4}]}
    )
    assert problems(too_much, SPECS.__getitem__)[0].startswith(
        "tfserving:autoscaling.maxReplicas x tfserving:server.resources.requests: one pod (1000m "
        "CPU, 7263Mi) fits on no node"
    )


def test_the_tiers_at_their_ceilings_against_the_groups_at_theirs():
    gateway = {
        "enabled": True,
        "autoscaling": {"maxReplicas": 5},
        **requests("1", "2Gi"),
    }
    settings = eks(
        server=requests("1", "2Gi"),
        autoscaling={"maxReplicas": 4},
        gateway=gateway,
        cluster={
            "nodeGroups": [
                {"name": "a", "maxSize": 2},
                {
                    "name": "b",
                    "instanceTypes": ["c5.large"],
                    "minSize": 0,
                    "desiredSize": 0,
                    "maxSize": 1,
                },
            ]
        },
    )
    where = "tfserving:cluster.nodeGroups[0] (2 x m5.large) + nodeGroups[1] (1 x c5.large)"
    keys = (
        "tfserving:autoscaling.maxReplicas x tfserving:server.resources.requests and "
        "tfserving:gateway.autoscaling.maxReplicas x tfserving:gateway.resources.requests"
    )
    # 9 pods of 1000m and 2Gi against 3 nodes of 1730m (two m5.large, one c5.large)
    assert problems(settings, SPECS.__getitem__) == [
        f"{keys}: at their ceilings the pods need 9000m of CPU, but {where} at maxSize hold 5190m "
        "allocatable: raise maxSize, choose bigger instance types, or lower maxReplicas or the "
        "requests",
        f"{keys}: at their ceilings the pods need 18432Mi of memory, but {where} at maxSize hold "
        f"{2 * 7262 + 3166}Mi allocatable: raise maxSize, choose bigger instance types, or lower "
        "maxReplicas or the requests",
    ]


def test_exactly_full_groups_fit():
    # two pods of 1730m on two nodes that each have 1730m allocatable
    settings = eks(
        server=requests("1730m", "1Gi"),
        autoscaling={"maxReplicas": 2},
        cluster={"nodeGroups": [{"name": "cpu", "minSize": 1, "desiredSize": 1, "maxSize": 2}]},
    )
    assert problems(settings, SPECS.__getitem__) == []


def test_pod_addresses_run_out_before_cpu_on_small_nodes():
    settings = eks(
        server=requests("10m", "16Mi"),
        autoscaling={"maxReplicas": 12},
        cluster={
            "nodeGroups": [
                {"name": "cpu", "instanceTypes": ["t3.small"], "desiredSize": 1, "maxSize": 1}
            ]
        },
    )
    assert problems(settings, SPECS.__getitem__) == [
        "tfserving:autoscaling.maxReplicas x tfserving:server.resources.requests: at their "
        "ceilings "
        "the pods need 12 of pod addresses, but tfserving:cluster.nodeGroups[0] (1 x t3.small) at "
        "maxSize hold 11 allocatable: raise maxSize, choose bigger instance types, or lower "
        "maxReplicas or the requests"
    ]


def test_gpu_pods_count_on_the_gpu_groups_only():
    gpu_server = {**requests("1", "2Gi", gpu=1), "image": "tensorflow/serving:2.20.0-gpu"}
    cluster = {"nodeGroups": [{"name": "cpu"}, {**GPU_GROUP, "maxSize": 2}]}
    fits = eks(server=gpu_server, autoscaling={"maxReplicas": 2}, cluster=cluster)
    assert problems(fits, SPECS.__getitem__) == []
    short = eks(server=gpu_server, autoscaling={"maxReplicas": 3}, cluster=cluster)
    keys = "tfserving:autoscaling.maxReplicas x tfserving:server.resources.requests"
    assert problems(short, SPECS.__getitem__) == [
        f"{keys}: at their ceilings the pods need 3 of GPUs, but tfserving:cluster.nodeGroups[1] "
        "(2 x g5.xlarge) at maxSize hold 2 allocatable: raise maxSize, choose bigger instance "
        "types, or lower maxReplicas or the requests"
    ]
    two_gpus = {**gpu_server, "gpu": 2}
    big = eks(server=two_gpus, autoscaling={"maxReplicas": 1}, cluster=cluster)
    assert problems(big, SPECS.__getitem__) == [
        f"{keys}: one pod (1000m CPU, 2048Mi, 2 GPU) fits on no node of "
        "tfserving:cluster.nodeGroups[1] (2 x g5.xlarge); ask for less or choose bigger instance "
        "types"
    ]


def test_only_groups_that_could_run_a_tier_are_looked_up():
    gpu_server = {**requests("1", "2Gi", gpu=1), "image": "tensorflow/serving:2.20.0-gpu"}
    cluster = {"nodeGroups": [{"name": "cpu", "instanceTypes": ["c5.large"]}, GPU_GROUP]}
    asked: list[str] = []

    def lookup(instance_type: str) -> InstanceSpec:
        asked.append(instance_type)
        return SPECS[instance_type]

    # every pod asks for a GPU and there is no gateway: the CPU group is not looked up
    assert problems(eks(server=gpu_server, cluster=cluster), lookup) == []
    assert asked == ["g5.xlarge"]
