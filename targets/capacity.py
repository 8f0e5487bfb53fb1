"""Will the pods fit? At preview, before anything is created (compute nodeGroups).

The HPAs may grow each tier to maxReplicas; the Cluster Autoscaler may grow each node group to
maxSize. If the ceilings of both tiers cannot fit in the groups at their ceilings, pods would
stay Pending at peak load, which is exactly when they are needed: stop with the keys to change.
Allocatable capacity per node follows EKS's own reservations (the AL2023 AMI's kube-reserved
formula and eviction threshold) minus what our DaemonSets take.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from config.cluster import NodeGroupSettings
from config.settings import EksSettings

# What the DaemonSets on every node request (VPC CNI + its policy agent, kube-proxy, the Pod
# Identity agent; the NVIDIA plugin on GPU nodes), rounded up.
DAEMONSET_MILLICORES = 200
DAEMONSET_MIB = 256
EVICTION_MIB = 100  # the kubelet's hard eviction threshold (memory.available<100Mi)


@dataclass(frozen=True)
class InstanceSpec:
    """What the AWS provider's instance-type data source says about a type."""

    vcpus: int
    memory_mib: int
    gpus: int
    network_interfaces: int
    ipv4_per_interface: int

    @property
    def max_pods(self) -> int:
        # The VPC CNI's limit without prefix delegation (EKS's max-pods formula).
        return self.network_interfaces * (self.ipv4_per_interface - 1) + 2

    @property
    def allocatable_millicores(self) -> int:
        reserved = 0.0
        for core in range(self.vcpus):  # EKS: 6% of the 1st core, 1% the 2nd, 0.5% up to 4th
            reserved += 60 if core == 0 else 10 if core == 1 else 5 if core < 4 else 2.5
        return int(self.vcpus * 1000 - reserved) - DAEMONSET_MILLICORES

    @property
    def allocatable_mib(self) -> int:
        kube_reserved = 255 + 11 * self.max_pods
        return self.memory_mib - kube_reserved - EVICTION_MIB - DAEMONSET_MIB


Lookup = Callable[[str], InstanceSpec]


@dataclass(frozen=True)
class Tier:
    """One autoscaled tier at its ceiling: how many pods, and what each asks for."""

    keys: str  # the stack keys that size it, for the message
    replicas: int
    millicores: int
    mib: int
    gpus: int


def _millicores(cores: Decimal) -> int:
    return math.ceil(cores * 1000)


def _mib(amount: Decimal) -> int:
    return math.ceil(amount / (1024 * 1024))


def tiers(settings: EksSettings) -> list[Tier]:
    server, scaling = settings.server, settings.autoscaling
    found = [
        Tier(
            "tfserving:autoscaling.maxReplicas x tfserving:server.resources.requests",
            scaling.max_replicas,
            _millicores(server.resources.requests.cpu.amount),
            _mib(server.resources.requests.memory.amount),
            server.gpu,
        )
    ]
    gateway = settings.gateway
    if gateway.enabled:
        found.append(
            Tier(
                "tfserving:gateway.autoscaling.maxReplicas x tfserving:gateway.resources.requests",
                gateway.autoscaling.max_replicas,
                _millicores(gateway.resources.requests.cpu.amount),
                _mib(gateway.resources.requests.memory.amount),
                0,
            )
        )
    return found


def _smallest(group: NodeGroupSettings, lookup: Lookup) -> InstanceSpec:
    # A group may launch any of its types: count on the smallest.
    specs = [lookup(t.value) for t in group.instance_types]
    return min(specs, key=lambda s: (s.allocatable_millicores, s.allocatable_mib))


def problems(settings: EksSettings, lookup: Lookup) -> list[str]:
    """Why the tiers' ceilings do not fit the node groups' ceilings (empty when they do)."""
    groups = settings.cluster.node_groups
    found: list[str] = []
    by_kind: Mapping[bool, list[tuple[int, NodeGroupSettings]]] = {
        gpu: [(i, g) for i, g in enumerate(groups) if g.gpu is gpu] for gpu in (False, True)
    }
    for gpu_nodes in (False, True):
        members = by_kind[gpu_nodes]
        wanted = [t for t in tiers(settings) if (t.gpus > 0) is gpu_nodes]
        if not wanted or not members:
            continue
        specs = [(i, g, _smallest(g, lookup)) for i, g in members]
        where = " + ".join(
            f"nodeGroups[{i}] ({g.max_size} x {g.instance_types[0]})" for i, g, _ in specs
        )
        for tier in wanted:
            if not any(
                tier.millicores <= s.allocatable_millicores
                and tier.mib <= s.allocatable_mib
                and tier.gpus <= s.gpus
                for _, _, s in specs
            ):
                found.append(
                    f"{tier.keys}: one pod ({tier.millicores}m CPU, {tier.mib}Mi"
                    f"{f', {tier.gpus} GPU' if tier.gpus else ''}) fits on no node of "
                    f"tfserving:cluster.{where}; ask for less or choose bigger instance types"
                )
        need_cpu = sum(t.replicas * t.millicores for t in wanted)
        need_mib = sum(t.replicas * t.mib for t in wanted)
        need_gpus = sum(t.replicas * t.gpus for t in wanted)
        pods = sum(t.replicas for t in wanted)
        have_cpu = sum(g.max_size * s.allocatable_millicores for _, g, s in specs)
        have_mib = sum(g.max_size * s.allocatable_mib for _, g, s in specs)
        have_gpus = sum(g.max_size * s.gpus for _, g, s in specs)
        have_pods = sum(g.max_size * s.max_pods for _, g, s in specs)
        keys = " and ".join(t.keys for t in wanted)
        for what, need, have, unit in (
            ("CPU", need_cpu, have_cpu, "m"),
            ("memory", need_mib, have_mib, "Mi"),
            ("GPUs", need_gpus, have_gpus, ""),
            ("pod addresses", pods, have_pods, ""),
        ):
            if need > have:
                found.append(
                    f"{keys}: at their ceilings the pods need {need}{unit} of {what}, but "
                    f"tfserving:cluster.{where} at maxSize hold {have}{unit} allocatable: raise "
                    "maxSize, choose bigger instance types, or lower maxReplicas or the requests"
                )
    return found
