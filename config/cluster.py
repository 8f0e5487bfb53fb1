"""`tfserving:cluster` and `tfserving:registry`: the EKS cluster and ECR of target eks."""

import re
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from config.base import DnsLabel, Strict, choice
from config.errors import InvalidSettingError

_EKS_VERSION = re.compile(r"^1\.\d{2}$")
# family, generation, processor (g = Graviton/Arm), capabilities, size: m5.large, g4dn.xlarge
_INSTANCE_TYPE = re.compile(r"^([a-z]+)(\d+)([a-z]?)([a-z-]*)\.([a-z0-9-]+)$")
_IAM_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}$")


class CapacityType(StrEnum):
    ON_DEMAND = "ON_DEMAND"
    SPOT = "SPOT"


class NatGateways(StrEnum):
    SINGLE = "single"  # one NAT gateway for all zones: the cheap default
    ONE_PER_AZ = "onePerAz"  # survives the loss of a zone, costs one gateway per zone


def _instance_type(value: str) -> str:
    match = _INSTANCE_TYPE.match(value)
    if not match:
        raise ValueError(f"must be an EC2 instance type like m5.large, got {value!r}")
    if match.group(3) == "g":
        raise ValueError(
            f"must be an x86_64 instance type: {value} is Arm (Graviton), and the "
            "tensorflow/serving image and the model image are linux/amd64 only"
        )
    return value


def _iam_principal(value: str) -> str:
    if not _IAM_PRINCIPAL.match(value):
        raise ValueError(
            "must be an IAM role or user ARN like arn:aws:iam::123456789012:role/NAME, "
            f"got {value!r}"
        )
    return value


InstanceType = Annotated[str, AfterValidator(_instance_type)]
IamPrincipal = Annotated[str, AfterValidator(_iam_principal)]


class NodeGroupSettings(Strict):
    name: DnsLabel
    instance_types: Annotated[list[InstanceType], Field(alias="instanceTypes")] = ["m5.large"]
    min_size: Annotated[int, Field(alias="minSize")] = 1
    desired_size: Annotated[int, Field(alias="desiredSize")] = 2
    max_size: Annotated[int, Field(alias="maxSize")] = 4
    capacity_type: Annotated[CapacityType, Field(alias="capacityType"), choice(CapacityType)] = (
        CapacityType.ON_DEMAND
    )
    # NVIDIA AMI, a nvidia.com/gpu=true:NoSchedule taint and a matching label.
    gpu: bool = False

    @field_validator("instance_types")
    @classmethod
    def _some_types(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must list at least one instance type, e.g. [m5.large]")
        return value

    @field_validator("min_size")
    @classmethod
    def _min(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"must be >= 0, got {value}")
        return value

    @model_validator(mode="after")
    def _sizes(self) -> Self:
        if self.max_size < max(1, self.min_size):
            raise InvalidSettingError(
                f"must be >= minSize ({self.min_size}) and >= 1, got {self.max_size}", at="maxSize"
            )
        if not self.min_size <= self.desired_size <= self.max_size:
            raise InvalidSettingError(
                f"must be between minSize ({self.min_size}) and maxSize ({self.max_size}), "
                f"got {self.desired_size}",
                at="desiredSize",
            )
        return self


class ClusterSettings(Strict):
    """The EKS cluster of target eks: network, control plane, node groups, admins."""

    version: str = "1.34"
    availability_zones: Annotated[int, Field(alias="availabilityZones")] = 2
    nat_gateways: Annotated[NatGateways, Field(alias="natGateways"), choice(NatGateways)] = (
        NatGateways.SINGLE
    )
    node_groups: Annotated[list[NodeGroupSettings], Field(alias="nodeGroups")] = [
        NodeGroupSettings(name="cpu")
    ]
    admin_role_arns: Annotated[list[IamPrincipal], Field(alias="adminRoleArns")] = []

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(
                f'must be a quoted string like "1.33" (YAML reads 1.30 as the number 1.3), '
                f"got {value!r}"
            )
        if isinstance(value, str) and not _EKS_VERSION.match(value):
            raise ValueError(f'must be a Kubernetes minor version like "1.33", got {value!r}')
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

    @field_validator("admin_role_arns")
    @classmethod
    def _unique_admins(cls, value: list[str]) -> list[str]:
        duplicates = sorted({arn for arn in value if value.count(arn) > 1})
        if duplicates:
            raise ValueError(f"must not repeat an ARN, got {duplicates[0]!r} twice")
        return value

    @model_validator(mode="after")
    def _node_groups(self) -> Self:
        if not self.node_groups:
            raise InvalidSettingError("must hold at least one node group", at="nodeGroups")
        seen: dict[str, int] = {}
        for index, group in enumerate(self.node_groups):
            if group.name in seen:
                raise InvalidSettingError(
                    f"must be unique, {group.name!r} is already nodeGroups[{seen[group.name]}]",
                    at=f"nodeGroups.{index}.name",
                )
            seen[group.name] = index
        if all(group.gpu for group in self.node_groups):
            raise InvalidSettingError(
                "must include a group without gpu: system pods and the model server do not "
                "tolerate the nvidia.com/gpu taint",
                at="nodeGroups",
            )
        return self


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
