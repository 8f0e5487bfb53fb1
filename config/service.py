"""How a tier is reached: its Service (`tfserving:service`, `tfserving:gateway.service`).

Exposure is chosen, never an accident: a load balancer is internal (reachable from the VPC) unless
the stack says `scheme: internet-facing`, and then it must say who may reach it. TF Serving's gRPC
port also serves ModelService/HandleReloadConfigRequest (unload or replace models), so a load
balancer open to the whole internet carries the REST port only, unless the stack acknowledges
the risk with `exposeGrpcToInternet: true`.
"""

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from config.base import Cidr, Strict, choice
from config.errors import InvalidSettingError

_ACM_CERTIFICATE = re.compile(
    r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$"
)
CHECKIP_HINT = "your address: curl -s https://checkip.amazonaws.com, then <ip>/32"


class ServiceType(StrEnum):
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"
    CLUSTER_IP = "ClusterIP"


class Scheme(StrEnum):
    INTERNAL = "internal"  # private addresses in the VPC's private subnets
    INTERNET_FACING = "internet-facing"  # public addresses in the public subnets


class TlsSettings(Strict):
    """TLS on the load balancer, with a certificate from AWS Certificate Manager."""

    certificate_arn: str = Field(alias="certificateArn")

    @field_validator("certificate_arn")
    @classmethod
    def _acm(cls, value: str) -> str:
        if not _ACM_CERTIFICATE.fullmatch(value):
            raise ValueError(
                "must be an ACM certificate ARN like arn:aws:acm:us-east-1:123456789012:"
                f"certificate/<id>, got {value!r}"
            )
        return value

    @property
    def region(self) -> str:
        match = _ACM_CERTIFICATE.fullmatch(self.certificate_arn)
        assert match is not None  # validated above
        return match.group(1)


class ServiceSettings(Strict):
    type: Annotated[ServiceType, choice(ServiceType)] = ServiceType.NODE_PORT
    node_port: int | None = Field(default=None, alias="nodePort")
    # LoadBalancer only: where it faces, who may reach it, and TLS.
    scheme: Annotated[Scheme, choice(Scheme)] = Scheme.INTERNAL
    allowed_source_ranges: list[Cidr] | None = Field(default=None, alias="allowedSourceRanges")
    tls: TlsSettings | None = None

    @field_validator("node_port")
    @classmethod
    def _node_port_range(cls, value: int | None) -> int | None:
        if value is not None and not 30000 <= value <= 32767:
            raise ValueError(f"must be in the NodePort range 30000-32767, got {value}")
        return value

    @field_validator("allowed_source_ranges")
    @classmethod
    def _some_ranges(cls, value: list[str] | None) -> list[str] | None:
        # An empty list means "everyone" to Kubernetes: make that explicit with 0.0.0.0/0.
        if value is not None and not value:
            raise ValueError(f"must list at least one CIDR block ({CHECKIP_HINT})")
        return value

    @model_validator(mode="after")
    def _fits_type(self) -> Self:
        if self.node_port is not None and self.type is not ServiceType.NODE_PORT:
            raise InvalidSettingError(
                f"only applies to type NodePort, not {self.type.value}", at="nodePort"
            )
        if self.type is not ServiceType.LOAD_BALANCER:
            for key, given in (
                ("allowedSourceRanges", self.allowed_source_ranges is not None),
                ("scheme", "scheme" in self.model_fields_set),
                ("tls", self.tls is not None),
            ):
                if given:
                    raise InvalidSettingError(
                        f"only applies to type LoadBalancer, not {self.type.value}", at=key
                    )
        elif self.internet_facing and self.allowed_source_ranges is None:
            raise InvalidSettingError(
                "is required for an internet-facing load balancer: list who may reach it "
                f"({CHECKIP_HINT}; 0.0.0.0/0 is everyone)",
                at="allowedSourceRanges",
            )
        return self

    @property
    def load_balancer(self) -> bool:
        return self.type is ServiceType.LOAD_BALANCER

    @property
    def internet_facing(self) -> bool:
        return self.load_balancer and self.scheme is Scheme.INTERNET_FACING

    @property
    def open_to_internet(self) -> bool:
        """Internet-facing with a source range that covers every address (0.0.0.0/0, ::/0)."""
        ranges = self.allowed_source_ranges or []
        return self.internet_facing and any(ipaddress.ip_network(r).prefixlen == 0 for r in ranges)


class ModelServiceSettings(ServiceSettings):
    """TF Serving's Service: REST 8501, and gRPC 8500 unless that must stay off it."""

    expose_grpc: bool = Field(default=True, alias="exposeGrpc")
    # The acknowledgement that lets a world-open load balancer carry the gRPC port, i.e. the
    # model-management RPC (ModelService/HandleReloadConfigRequest) and 2 GiB messages.
    expose_grpc_to_internet: bool = Field(default=False, alias="exposeGrpcToInternet")

    @model_validator(mode="after")
    def _grpc_exposure(self) -> Self:
        if self.expose_grpc_to_internet and not (self.open_to_internet and self.expose_grpc):
            raise InvalidSettingError(
                "only applies when exposeGrpc is true on an internet-facing load balancer whose "
                "allowedSourceRanges cover the whole internet (0.0.0.0/0 or ::/0)",
                at="exposeGrpcToInternet",
            )
        return self

    @property
    def grpc_on_service(self) -> bool:
        """Whether the Service carries TF Serving's gRPC port."""
        if not self.expose_grpc:
            return False
        return not self.open_to_internet or self.expose_grpc_to_internet
