"""Pieces every settings model uses: strict parsing, enumerations, names, pinned images, CIDRs."""

import ipaddress
import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Strict(BaseModel):
    # Strict: YAML `"2"` is not silently an int; forbid: a typo is an error, not a default.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)


def choice(options: type[StrEnum]) -> BeforeValidator:
    """Accept exactly one of an enum's values, naming them all when the value is something else."""
    allowed = [member.value for member in options]

    def check(value: object) -> object:
        if isinstance(value, options):
            return value
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {value!r}")
        return options(value)

    return BeforeValidator(check)


def dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"must be a valid Kubernetes name (lowercase letters, digits and '-', "
            f"starting and ending with a letter or digit, at most 63 characters), got {value!r}"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(dns_label)]


def pinned_image(value: str) -> str:
    if "@sha256:" in value:
        return value
    last_segment = value.rsplit("/", 1)[-1]
    if ":" not in last_segment:
        raise ValueError(f"must be pinned to a tag or digest, got untagged {value!r}")
    if last_segment.rsplit(":", 1)[1] == "latest":
        raise ValueError(f"must be pinned to a version, not ':latest', got {value!r}")
    return value


PinnedImage = Annotated[str, AfterValidator(pinned_image)]


def image_tag(image: str) -> str:
    """The tag of a pinned image, or the start of its digest (a label value, so short)."""
    if "@sha256:" in image:
        return image.rsplit("@sha256:", 1)[1][:12]
    return image.rsplit(":", 1)[-1]


def cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise ValueError(
            f"must be a CIDR block like 203.0.113.0/24, got {value!r} ({error})"
        ) from None
    return str(network)


Cidr = Annotated[str, AfterValidator(cidr)]
