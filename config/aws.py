"""What AWS itself accepts: regions, instance types and the `aws:*` provider keys of a stack.

Names are checked against the enumerations pulumi-aws ships (`aws.Region`, 46 regions;
`aws.ec2.InstanceType`, 1405 types), so a typo such as `m5.lrage` or `us-east-7` stops the
preview instead of failing minutes into `pulumi up`.
"""

import re
from dataclasses import dataclass
from typing import Annotated

import pulumi_aws.config as aws_config
from pulumi_aws._enums import Region
from pulumi_aws.ec2._enums import InstanceType as AwsInstanceType
from pydantic import PlainSerializer, PlainValidator

REGIONS = frozenset(region.value for region in Region)
INSTANCE_TYPES = frozenset(instance.value for instance in AwsInstanceType)
# NVIDIA GPUs that TF Serving 2.20's CUDA 12 builds run on (Turing T4 and newer).
NVIDIA_GPU_FAMILIES = frozenset(
    {"g4dn", "g5", "g6", "g6e", "g6f", "gr6", "gr6f", "p3", "p3dn", "p4d", "p4de", "p5", "p5e",
     "p5en", "p6-b200", "p6-b300"}
)  # fmt: skip
# NVIDIA GPUs too old for CUDA 12 (Kepler K80/K520, Maxwell M60).
OLD_GPU_FAMILIES = frozenset({"g2", "g3", "g3s", "p2"})
# Accelerators TF Serving cannot use: AMD GPUs, Inferentia/Trainium, Gaudi, FPGAs, video cards,
# and families whose accelerator this project has not checked.
OTHER_ACCELERATOR_FAMILIES = frozenset(
    {"g4ad", "g7", "g7e", "inf1", "inf2", "trn1", "trn1n", "trn2", "dl1", "dl2q", "f1", "f2", "vt1"}
)
# Graviton (Arm) families: the processor letter g (m7g, c7gn, im4gn), plus a1 and Grace.
_ARM_FAMILIES = frozenset({"a1", "p6e-gb200"})
_FAMILY = re.compile(r"^([a-z]+)(\d+)([a-z-]*)$")


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _provider_keys() -> frozenset[str]:
    """The AWS provider's configuration keys (aws:region, aws:profile, ...), from its SDK: one
    property per key on the config module's class (loaded lazily, hence the first access)."""
    _ = aws_config.region
    config_class = type(aws_config)
    return frozenset(
        _camel(name)
        for name in dir(config_class)
        if not name.startswith("_") and isinstance(getattr(config_class, name), property)
    )


AWS_KEYS = _provider_keys()


def _is_arm(family: str) -> bool:
    if family in _ARM_FAMILIES:
        return True
    match = _FAMILY.fullmatch(family)
    if match is None:
        return False
    return "g" in match.group(3).split("-")[0]


@dataclass(frozen=True)
class InstanceType:
    """An EC2 instance type this project can run nodes on (x86_64; CPU or NVIDIA GPU)."""

    value: str

    @property
    def family(self) -> str:
        return self.value.split(".", 1)[0]

    @property
    def nvidia_gpus(self) -> bool:
        return self.family in NVIDIA_GPU_FAMILIES

    def __str__(self) -> str:
        return self.value


def instance_type(value: object) -> InstanceType:
    if isinstance(value, InstanceType):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be an EC2 instance type like m5.large, got {value!r}")
    if value not in INSTANCE_TYPES:
        from difflib import get_close_matches  # noqa: PLC0415

        close = get_close_matches(value, sorted(INSTANCE_TYPES), n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ValueError(f"is not an EC2 instance type, got {value!r}{hint}")
    family = value.split(".", 1)[0]
    if _is_arm(family):
        raise ValueError(
            f"must be an x86_64 instance type: {value} is Arm (Graviton), and the "
            "tensorflow/serving image and the model image are linux/amd64 only"
        )
    if family in OLD_GPU_FAMILIES:
        raise ValueError(
            f"{value} has an NVIDIA GPU too old for TF Serving's CUDA 12 builds: use g4dn, g5, "
            "g6 or newer"
        )
    if family.startswith("mac"):
        raise ValueError(f"{value} is a Mac instance, which cannot be an EKS node")
    if family in OTHER_ACCELERATOR_FAMILIES:
        raise ValueError(
            f"{value}'s accelerator is not one TF Serving can use (it needs NVIDIA GPUs): use a "
            "CPU type such as m5.large or an NVIDIA family such as g5"
        )
    return InstanceType(value)


InstanceTypeName = Annotated[
    InstanceType, PlainValidator(instance_type), PlainSerializer(str, return_type=str)
]


def region_problem(region: str) -> str | None:
    """Why `aws:region` is not a region, or None."""
    if region in REGIONS:
        return None
    from difflib import get_close_matches  # noqa: PLC0415

    close = get_close_matches(region, sorted(REGIONS), n=1, cutoff=0.7)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"aws:region is not an AWS region, got {region!r}{hint}"


def key_problem(key: str) -> str | None:
    """Why `aws:<key>` is not a setting of the AWS provider, or None."""
    if key in AWS_KEYS:
        return None
    from difflib import get_close_matches  # noqa: PLC0415

    close = get_close_matches(key, sorted(AWS_KEYS), n=1, cutoff=0.6)
    hint = f"; did you mean aws:{close[0]}?" if close else ""
    return f"aws:{key} is not a setting of the AWS provider{hint}"
