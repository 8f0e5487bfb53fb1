"""`tfserving:cluster` and `tfserving:registry`: the EKS cluster and ECR of target eks."""

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from config.aws import InstanceType, InstanceTypeName
from config.base import Cidr, DnsLabel, Strict, choice
from config.errors import InvalidSettingError

_IAM_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}$")
# Retention periods CloudWatch Logs accepts (PutRetentionPolicy).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)  # fmt: skip
# Root volumes: the AL2023 AMIs' own 20 GiB is enough for CPU nodes; the NVIDIA AMI plus the
# TF Serving -gpu image (CUDA, cuDNN, TensorRT: several GB unpacked) need room to pull into.
CPU_DISK_GIB = 20
GPU_DISK_GIB = 100


@dataclass(frozen=True)
class KubernetesVersion:
    """What we know of an EKS Kubernetes version: its Cluster Autoscaler and support dates."""

    autoscaler_image_tag: str  # the Cluster Autoscaler minor must match the cluster's
    standard_support_ends: date  # then extended support ($0.60/h instead of $0.10/h) or upgrade


# EKS's release calendar (standard support is 14 months from the EKS release) and the newest
# Cluster Autoscaler patch of each minor (kubernetes/autoscaler tags cluster-autoscaler-1.NN.P).
KUBERNETES_VERSIONS = {
    "1.33": KubernetesVersion("v1.33.6", date(2026, 7, 29)),
    "1.34": KubernetesVersion("v1.34.5", date(2026, 12, 2)),
    "1.35": KubernetesVersion("v1.35.2", date(2027, 3, 27)),
    "1.36": KubernetesVersion("v1.36.1", date(2027, 8, 2)),
}
DEFAULT_KUBERNETES_VERSION = "1.35"
# EKS add-ons this program installs, whose versions a stack may pin (cluster.addonVersions).
ADDONS = ("metrics-server", "eks-pod-identity-agent", "vpc-cni")
_ADDON_VERSION = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")


class CapacityType(StrEnum):
    ON_DEMAND = "ON_DEMAND"
    SPOT = "SPOT"


class NatGateways(StrEnum):
    SINGLE = "single"  # one NAT gateway for all zones: the cheap default
    ONE_PER_AZ = "onePerAz"  # survives the loss of a zone, costs one gateway per zone


class Compute(StrEnum):
    # Managed node groups sized by the Cluster Autoscaler (the course's eksctl node groups).
    NODE_GROUPS = "nodeGroups"
    # EKS Auto Mode: AWS-managed Karpenter launches nodes for pending pods; no groups to size.
    AUTO_MODE = "autoMode"


class UpgradePolicy(StrEnum):
    STANDARD = "STANDARD"  # EKS upgrades the control plane when standard support ends
    EXTENDED = "EXTENDED"  # stays on the version, billed at the extended-support rate


def _iam_principal(value: str) -> str:
    if not _IAM_PRINCIPAL.fullmatch(value):
        raise ValueError(
            "must be an IAM role or user ARN like arn:aws:iam::123456789012:role/NAME, "
            f"got {value!r}"
        )
    return value


IamPrincipal = Annotated[str, AfterValidator(_iam_principal)]


def _unique(value: list[str]) -> list[str]:
    duplicates = sorted({item for item in value if value.count(item) > 1})
    if duplicates:
        raise ValueError(f"must not repeat an entry, got {duplicates[0]!r} twice")
    return value


class NodeGroupSettings(Strict):
    name: DnsLabel
    instance_types: Annotated[list[InstanceTypeName], Field(alias="instanceTypes")] = [
        InstanceType("m5.large")
    ]
    min_size: Annotated[int, Field(alias="minSize")] = 1
    desired_size: Annotated[int, Field(alias="desiredSize")] = 2
    max_size: Annotated[int, Field(alias="maxSize")] = 4
    capacity_type: Annotated[CapacityType, Field(alias="capacityType"), choice(CapacityType)] = (
        CapacityType.ON_DEMAND
    )
    # NVIDIA AMI, the nvidia.com/gpu=true:NoSchedule taint and the nvidia.com/gpu.present label.
    gpu: bool = False
    # Root volume in GiB; default 20 for CPU groups, 100 for GPU groups.
    disk_size: Annotated[int | None, Field(alias="diskSize")] = None

    @field_validator("instance_types")
    @classmethod
    def _some_types(cls, value: list[InstanceType]) -> list[InstanceType]:
        if not value:
            raise ValueError("must list at least one instance type, e.g. [m5.large]")
        if len({t.value for t in value}) != len(value):
            raise ValueError("must not repeat an instance type")
        return value

    @field_validator("min_size")
    @classmethod
    def _min(cls, value: int) -> int:
        if not 0 <= value <= 1000:
            raise ValueError(f"must be between 0 and 1000, got {value}")
        return value

    @field_validator("disk_size")
    @classmethod
    def _disk(cls, value: int | None) -> int | None:
        if value is not None and not 20 <= value <= 16384:
            raise ValueError(f"must be between 20 and 16384 GiB, got {value}")
        return value

    @model_validator(mode="after")
    def _sizes_and_kind(self) -> Self:
        if not max(1, self.min_size) <= self.max_size <= 1000:
            raise InvalidSettingError(
                f"must be >= minSize ({self.min_size}) and >= 1, and at most 1000, "
                f"got {self.max_size}",
                at="maxSize",
            )
        if not self.min_size <= self.desired_size <= self.max_size:
            raise InvalidSettingError(
                f"must be between minSize ({self.min_size}) and maxSize ({self.max_size}), "
                f"got {self.desired_size}",
                at="desiredSize",
            )
        for index, instance in enumerate(self.instance_types):
            if instance.nvidia_gpus and not self.gpu:
                raise InvalidSettingError(
                    f"{instance.value} is a GPU instance type ({instance.family}): set gpu: true "
                    "on this group (NVIDIA AMI, GPU taint) and server.gpu for TF Serving, or "
                    "choose a CPU type such as m5.large",
                    at=f"instanceTypes.{index}",
                )
            if self.gpu and not instance.nvidia_gpus:
                raise InvalidSettingError(
                    f"{instance.value} has no NVIDIA GPU, but the group has gpu: true: choose an "
                    "NVIDIA family (g4dn, g5, g6, g6e, p4d, p5) or drop gpu",
                    at=f"instanceTypes.{index}",
                )
        return self

    @property
    def root_volume_gib(self) -> int:
        if self.disk_size is not None:
            return self.disk_size
        return GPU_DISK_GIB if self.gpu else CPU_DISK_GIB


class GpuNodePoolSettings(Strict):
    """The Auto Mode NodePool for GPU serving (created only when server.gpu > 0)."""

    instance_families: Annotated[list[str], Field(alias="instanceFamilies")] = ["g6", "g5"]
    capacity_types: Annotated[list[str], Field(alias="capacityTypes")] = ["on-demand"]
    # Most GPUs the pool may run at once: a cost ceiling, like a node group's maxSize.
    max_gpus: Annotated[int, Field(alias="maxGpus")] = 4

    @field_validator("instance_families")
    @classmethod
    def _families(cls, value: list[str]) -> list[str]:
        from config.aws import NVIDIA_GPU_FAMILIES  # noqa: PLC0415

        if not value:
            raise ValueError("must list at least one NVIDIA instance family, e.g. [g6, g5]")
        for family in value:
            if family not in NVIDIA_GPU_FAMILIES:
                known = ", ".join(sorted(NVIDIA_GPU_FAMILIES))
                raise ValueError(f"must be NVIDIA GPU instance families ({known}), got {family!r}")
        return _unique(value)

    @field_validator("capacity_types")
    @classmethod
    def _capacity(cls, value: list[str]) -> list[str]:
        if not value or any(v not in ("on-demand", "spot") for v in value):
            raise ValueError(f"must list on-demand and/or spot, got {value!r}")
        return _unique(value)

    @field_validator("max_gpus")
    @classmethod
    def _limit(cls, value: int) -> int:
        if not 1 <= value <= 1000:
            raise ValueError(f"must be between 1 and 1000, got {value}")
        return value


class ClusterSettings(Strict):
    """The EKS cluster of target eks: network, control plane, compute, access, logs."""

    version: str = DEFAULT_KUBERNETES_VERSION
    upgrade_policy: Annotated[
        UpgradePolicy, Field(alias="upgradePolicy"), choice(UpgradePolicy)
    ] = UpgradePolicy.STANDARD
    compute: Annotated[Compute, choice(Compute)] = Compute.NODE_GROUPS
    availability_zones: Annotated[int, Field(alias="availabilityZones")] = 2
    nat_gateways: Annotated[NatGateways, Field(alias="natGateways"), choice(NatGateways)] = (
        NatGateways.SINGLE
    )
    # Filled with one CPU group in nodeGroups mode (see _compute_defaults); empty in autoMode.
    node_groups: Annotated[list[NodeGroupSettings], Field(alias="nodeGroups")] = []
    gpu_node_pool: Annotated[GpuNodePoolSettings | None, Field(alias="gpuNodePool")] = None
    admin_role_arns: Annotated[
        list[IamPrincipal], Field(alias="adminRoleArns"), AfterValidator(_unique)
    ] = []
    # Read-only cluster access (AmazonEKSViewPolicy, no Secrets), e.g. for CI's preview role.
    viewer_role_arns: Annotated[
        list[IamPrincipal], Field(alias="viewerRoleArns"), AfterValidator(_unique)
    ] = []
    # Who may reach the Kubernetes API's public endpoint (private access is always on).
    public_access_cidrs: Annotated[list[Cidr], Field(alias="publicAccessCidrs")] = ["0.0.0.0/0"]
    log_retention_days: Annotated[int, Field(alias="logRetentionDays")] = 30
    addon_versions: Annotated[dict[str, str], Field(alias="addonVersions")] = {}

    @model_validator(mode="before")
    @classmethod
    def _compute_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if data.get("compute") == Compute.AUTO_MODE.value:
            if "nodeGroups" in data:
                raise InvalidSettingError(
                    "must not be set with compute: autoMode (Auto Mode launches nodes for "
                    "pending pods itself); remove nodeGroups or use compute: nodeGroups",
                    at="nodeGroups",
                )
            return data
        if "gpuNodePool" in data:
            raise InvalidSettingError(
                "only applies to compute: autoMode; a GPU node group (gpu: true) does this "
                "in nodeGroups mode",
                at="gpuNodePool",
            )
        return {"nodeGroups": [{"name": "cpu"}], **data}

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(
                f'must be a quoted string like "1.35" (YAML reads 1.30 as the number 1.3), '
                f"got {value!r}"
            )
        if isinstance(value, str) and value not in KUBERNETES_VERSIONS:
            raise ValueError(
                f"must be a Kubernetes version this project supports on EKS "
                f"({', '.join(KUBERNETES_VERSIONS)}), got {value!r}"
            )
        return value

    @field_validator("availability_zones")
    @classmethod
    def _zones(cls, value: int) -> int:
        if not 2 <= value <= 6:
            raise ValueError(
                "must be between 2 and 6 (EKS needs subnets in at least two availability "
                f"zones), got {value}"
            )
        return value

    @field_validator("public_access_cidrs")
    @classmethod
    def _some_cidrs(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(
                "must list at least one CIDR block (your address: curl -s "
                "https://checkip.amazonaws.com, then <ip>/32)"
            )
        return _unique(value)

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"must be a retention CloudWatch Logs accepts "
                f"({', '.join(map(str, LOG_RETENTION_DAYS))}), got {value}"
            )
        return value

    @field_validator("addon_versions")
    @classmethod
    def _addon_versions(cls, value: dict[str, str]) -> dict[str, str]:
        for addon, version in value.items():
            if addon not in ADDONS:
                raise ValueError(
                    f"keys must be add-ons we install ({', '.join(ADDONS)}), got {addon!r}"
                )
            if not isinstance(version, str) or not _ADDON_VERSION.fullmatch(version):
                raise ValueError(
                    f"{addon} must be an EKS add-on version like v0.8.0-eksbuild.1 "
                    f"(aws eks describe-addon-versions --addon-name {addon}), got {version!r}"
                )
        return value

    @model_validator(mode="after")
    def _groups_and_access(self) -> Self:
        if self.compute is Compute.NODE_GROUPS and not self.node_groups:
            raise InvalidSettingError("must hold at least one node group", at="nodeGroups")
        seen: dict[str, int] = {}
        for index, group in enumerate(self.node_groups):
            if group.name in seen:
                raise InvalidSettingError(
                    f"must be unique, {group.name!r} is already nodeGroups[{seen[group.name]}]",
                    at=f"nodeGroups.{index}.name",
                )
            seen[group.name] = index
        if self.node_groups and all(group.gpu for group in self.node_groups):
            raise InvalidSettingError(
                "must include a group without gpu: system pods and the gateway do not "
                "tolerate the nvidia.com/gpu taint",
                at="nodeGroups",
            )
        both = sorted(set(self.admin_role_arns) & set(self.viewer_role_arns))
        if both:
            raise InvalidSettingError(
                f"must not repeat an admin ({both[0]!r}): an admin can already read",
                at="viewerRoleArns",
            )
        return self

    @property
    def kubernetes(self) -> KubernetesVersion:
        return KUBERNETES_VERSIONS[self.version]

    @property
    def gpu_groups(self) -> list[NodeGroupSettings]:
        return [group for group in self.node_groups if group.gpu]


class RegistrySettings(Strict):
    """The ECR repositories our images are pushed to (target eks)."""

    # Let `pulumi destroy` delete the repository with the images in it.
    force_delete: Annotated[bool, Field(alias="forceDelete")] = True
    # Lifecycle policy: keep this many newest images, expire older ones.
    keep_images: Annotated[int, Field(alias="keepImages")] = 10

    @field_validator("keep_images")
    @classmethod
    def _keep(cls, value: int) -> int:
        if not 1 <= value <= 10_000:
            raise ValueError(
                f"must be between 1 (the running image must be kept) and 10000, got {value}"
            )
        return value
