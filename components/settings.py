"""Typed stack settings: the `tfserving:*` config read once, validated, with defaults.

Everything downstream takes these objects, never raw config. A bad value stops the program
before any resource is registered, with a message that names the key path, e.g.
`tfserving:autoscaling.maxReplicas must be >= minReplicas (2), got 1`.
"""

import ipaddress
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from components.quantity import parse_quantity

NAMESPACE = "tfserving"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A ConfigMap (data + binaryData) is capped at 1 MiB by the API server.
CONFIGMAP_MAX_BYTES = 1024 * 1024
# Leave room for the object's metadata and the key names inside that 1 MiB.
CONFIGMAP_MODEL_BUDGET = CONFIGMAP_MAX_BYTES - 16 * 1024

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VERSION_DIR = re.compile(r"^\d+$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_EKS_VERSION = re.compile(r"^1\.\d{2}$")
# family, generation, processor (g = Graviton/Arm), capabilities, size: m5.large, g4dn.xlarge
_INSTANCE_TYPE = re.compile(r"^([a-z]+)(\d+)([a-z]?)([a-z-]*)\.([a-z0-9-]+)$")
_IAM_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}$")


class SettingsError(pulumi.RunError):
    """Invalid stack configuration; each line names the offending key.

    A RunError, so `pulumi up` prints the message alone, without a Python traceback.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Strict(BaseModel):
    # Strict: YAML `"2"` is not silently an int; forbid: a typo is an error, not a default.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)


def _choice(options: type[StrEnum]) -> BeforeValidator:
    """Accept exactly one of an enum's values, naming them all when the value is something else."""
    allowed = [member.value for member in options]

    def check(value: object) -> object:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {value!r}")
        return options(value)

    return BeforeValidator(check)


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"must be a valid Kubernetes name (lowercase letters, digits and '-', "
            f"starting and ending with a letter or digit, at most 63 characters), got {value!r}"
        )
    return value


class Target(StrEnum):
    MINIKUBE = "minikube"
    EKS = "eks"


class ModelSource(StrEnum):
    CONFIGMAP = "configmap"
    IMAGE = "image"
    GCS = "gcs"


class ServiceType(StrEnum):
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"
    CLUSTER_IP = "ClusterIP"


class ModelFile(BaseModel):
    """One file of a SavedModel, relative to the model's base directory (`1/saved_model.pb`)."""

    model_config = ConfigDict(frozen=True)
    relative_path: str
    source: Path

    @property
    def configmap_key(self) -> str:
        # ConfigMap keys cannot hold '/'; the volume's items map each key back to its path.
        return self.relative_path.replace("/", "__")


class ModelSettings(_Strict):
    name: str = "half_plus_two"
    source: Annotated[ModelSource, _choice(ModelSource)] = ModelSource.CONFIGMAP
    path: str | None = "models/half_plus_two"
    uri: str | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _MODEL_NAME.match(value) or len(value) > 128:
            raise ValueError(
                "must start with a letter or digit and hold only letters, digits, '_', '.' "
                f"and '-' (it is part of TF Serving's URL and file path), got {value!r}"
            )
        return value

    @field_validator("source", mode="before")
    @classmethod
    def _known_source(cls, value: object) -> object:
        if isinstance(value, str) and value.lower() == "s3":
            raise ValueError(
                "must not be s3: TF Serving removed S3 support in 2.7, so it cannot read "
                "s3:// paths; use source: image (the model is baked into an image in ECR)"
            )
        return value

    @field_validator("uri")
    @classmethod
    def _gcs_uri(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if value.startswith("s3://"):
            raise ValueError(
                "must not be an s3:// path: TF Serving removed S3 support in 2.7; "
                "use source: image to bake the model into an image instead"
            )
        if not value.startswith("gs://"):
            raise ValueError(f"must be a gs:// URI, got {value!r}")
        name = info.data.get("name")
        if value.rstrip("/").rsplit("/", 1)[-1] != name:
            # The image's entrypoint reads ${MODEL_BASE_PATH}/${MODEL_NAME}.
            raise ValueError(f"must end with the model name '/{name}', got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _source_fields(self) -> Self:
        if self.source is ModelSource.GCS:
            if self.uri is None:
                raise _at("uri", "is required when source is gcs (gs://bucket/path/<name>)")
        else:
            if self.uri is not None:
                raise _at("uri", f"only applies to source gcs, not {self.source.value}")
            if not self.path:
                raise _at("path", f"is required when source is {self.source.value}")
            self._check_model_dir()
        return self

    @property
    def directory(self) -> Path:
        assert self.path is not None
        candidate = Path(self.path)
        return candidate if candidate.is_absolute() else PROJECT_ROOT / candidate

    @property
    def versions(self) -> list[int]:
        return sorted(
            int(p.name)
            for p in self.directory.iterdir()
            if p.is_dir() and _VERSION_DIR.match(p.name) and (p / "saved_model.pb").is_file()
        )

    def files(self) -> list[ModelFile]:
        """Every file of every numbered version, in a stable order."""
        found: list[ModelFile] = []
        for version in self.versions:
            root = self.directory / str(version)
            for file in sorted(p for p in root.rglob("*") if p.is_file()):
                relative = file.relative_to(self.directory).as_posix()
                found.append(ModelFile(relative_path=relative, source=file))
        return found

    def _check_model_dir(self) -> None:
        if not self.directory.is_dir():
            raise _at("path", f"must be a directory holding the model, {self.directory} is not")
        if not self.versions:
            raise _at(
                "path",
                f"must hold a numbered version directory with a saved_model.pb "
                f"(e.g. {self.path}/1/saved_model.pb); none found in {self.directory}",
            )
        if self.source is ModelSource.CONFIGMAP:
            size = sum(f.source.stat().st_size for f in self.files())
            if size > CONFIGMAP_MODEL_BUDGET:
                raise _at(
                    "path",
                    f"holds {size} bytes of model files, too big for a ConfigMap "
                    f"(1 MiB limit); use source: image to bake the model into an image",
                )


def _at(field: str, message: str) -> ValueError:
    """An error for a sibling field, raised from a model validator."""
    return ValueError(f"@{field}@{message}")


Quantity = str | int | float


class ResourceAmounts(_Strict):
    cpu: Quantity
    memory: Quantity

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: Quantity) -> str:
        if isinstance(value, bool):
            raise ValueError(f"is not a Kubernetes quantity: {value!r}")
        amount = parse_quantity(value)
        if amount <= 0:
            raise ValueError(f"must be greater than zero, got {value!r}")
        return str(value)


class Resources(_Strict):
    requests: ResourceAmounts = ResourceAmounts(cpu="250m", memory="256Mi")
    limits: ResourceAmounts = ResourceAmounts(cpu="1", memory="1Gi")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Self:
        for kind in ("cpu", "memory"):
            request, limit = getattr(self.requests, kind), getattr(self.limits, kind)
            if parse_quantity(request) > parse_quantity(limit):
                raise _at(
                    f"requests.{kind}", f"({request}) must not exceed limits.{kind} ({limit})"
                )
        return self

    @property
    def cpu_limit_cores(self) -> float:
        return float(parse_quantity(self.limits.cpu))


def _pinned_image(value: str) -> str:
    if "@sha256:" in value:
        return value
    last_segment = value.rsplit("/", 1)[-1]
    if ":" not in last_segment:
        raise ValueError(f"must be pinned to a tag or digest, got untagged {value!r}")
    if last_segment.rsplit(":", 1)[1] == "latest":
        raise ValueError(f"must be pinned to a version, not ':latest', got {value!r}")
    return value


class ServerSettings(_Strict):
    image: str = "tensorflow/serving:2.19.1"
    resources: Resources = Resources()

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        return _pinned_image(value)

    @property
    def tag(self) -> str:
        return _image_tag(self.image)


def _image_tag(image: str) -> str:
    """The tag of a pinned image, or the start of its digest (a label value, so short)."""
    if "@sha256:" in image:
        return image.rsplit("@sha256:", 1)[1][:12]
    return image.rsplit(":", 1)[-1]


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise ValueError(
            f"must be a CIDR block like 203.0.113.0/24, got {value!r} ({error})"
        ) from None
    return str(network)


Cidr = Annotated[str, AfterValidator(_cidr)]


class ServiceSettings(_Strict):
    type: Annotated[ServiceType, _choice(ServiceType)] = ServiceType.NODE_PORT
    node_port: int | None = Field(default=None, alias="nodePort")
    # Who may reach the cloud load balancer (Service loadBalancerSourceRanges).
    allowed_source_ranges: list[Cidr] | None = Field(default=None, alias="allowedSourceRanges")

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
            raise ValueError("must list at least one CIDR block (0.0.0.0/0 allows everyone)")
        return value

    @model_validator(mode="after")
    def _fits_type(self) -> Self:
        if self.node_port is not None and self.type is not ServiceType.NODE_PORT:
            raise _at("nodePort", f"only applies to type NodePort, not {self.type.value}")
        if self.allowed_source_ranges is not None and self.type is not ServiceType.LOAD_BALANCER:
            raise _at(
                "allowedSourceRanges", f"only applies to type LoadBalancer, not {self.type.value}"
            )
        return self


class AutoscalingSettings(_Strict):
    min_replicas: Annotated[int, Field(alias="minReplicas")] = 1
    max_replicas: Annotated[int, Field(alias="maxReplicas")] = 3
    target_cpu_utilization: Annotated[int, Field(alias="targetCpuUtilization")] = 60
    scale_down_stabilization_seconds: Annotated[
        int, Field(alias="scaleDownStabilizationSeconds")
    ] = 300

    @field_validator("min_replicas")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be >= 1, got {value}")
        return value

    @field_validator("max_replicas")
    @classmethod
    def _not_below_min(cls, value: int, info: ValidationInfo) -> int:
        minimum = info.data.get("min_replicas")
        if minimum is not None and value < minimum:
            raise ValueError(f"must be >= minReplicas ({minimum}), got {value}")
        return value

    @field_validator("target_cpu_utilization")
    @classmethod
    def _percentage(cls, value: int) -> int:
        if not 1 <= value <= 100:
            raise ValueError(f"must be between 1 and 100 (percent of the CPU request), got {value}")
        return value

    @field_validator("scale_down_stabilization_seconds")
    @classmethod
    def _window(cls, value: int) -> int:
        if not 0 <= value <= 3600:
            raise ValueError(f"must be between 0 and 3600 seconds, got {value}")
        return value


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


class NodeGroupSettings(_Strict):
    name: str
    instance_types: Annotated[
        list[Annotated[str, AfterValidator(_instance_type)]], Field(alias="instanceTypes")
    ] = ["m5.large"]
    min_size: Annotated[int, Field(alias="minSize")] = 1
    desired_size: Annotated[int, Field(alias="desiredSize")] = 2
    max_size: Annotated[int, Field(alias="maxSize")] = 4
    capacity_type: Annotated[CapacityType, Field(alias="capacityType"), _choice(CapacityType)] = (
        CapacityType.ON_DEMAND
    )
    # NVIDIA AMI, a nvidia.com/gpu=true:NoSchedule taint and a matching label.
    gpu: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _dns_label(value)

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
            raise _at(
                "maxSize", f"must be >= minSize ({self.min_size}) and >= 1, got {self.max_size}"
            )
        if not self.min_size <= self.desired_size <= self.max_size:
            raise _at(
                "desiredSize",
                f"must be between minSize ({self.min_size}) and maxSize ({self.max_size}), "
                f"got {self.desired_size}",
            )
        return self


class ClusterSettings(_Strict):
    """The EKS cluster of target eks: network, control plane, node groups, admins."""

    version: str = "1.34"
    availability_zones: Annotated[int, Field(alias="availabilityZones")] = 2
    nat_gateways: Annotated[NatGateways, Field(alias="natGateways"), _choice(NatGateways)] = (
        NatGateways.SINGLE
    )
    node_groups: Annotated[list[NodeGroupSettings], Field(alias="nodeGroups")] = [
        NodeGroupSettings(name="cpu")
    ]
    admin_role_arns: Annotated[
        list[Annotated[str, AfterValidator(_iam_principal)]], Field(alias="adminRoleArns")
    ] = []

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
            raise _at("nodeGroups", "must hold at least one node group")
        seen: dict[str, int] = {}
        for index, group in enumerate(self.node_groups):
            if group.name in seen:
                raise _at(
                    f"nodeGroups[{index}].name",
                    f"must be unique, {group.name!r} is already nodeGroups[{seen[group.name]}]",
                )
            seen[group.name] = index
        if all(group.gpu for group in self.node_groups):
            raise _at(
                "nodeGroups",
                "must include a group without gpu: system pods and the model server do not "
                "tolerate the nvidia.com/gpu taint",
            )
        return self


class RegistrySettings(_Strict):
    """The ECR repository the model image is pushed to (target eks, model source image)."""

    # Let `pulumi destroy` delete the repository with the images in it.
    force_delete: Annotated[bool, Field(alias="forceDelete")] = True
    # Lifecycle policy: keep this many newest images, expire older ones.
    keep_images: Annotated[int, Field(alias="keepImages")] = 10

    @field_validator("keep_images")
    @classmethod
    def _keep(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be >= 1 (the running image must be kept), got {value}")
        return value


class Preprocessing(StrEnum):
    XCEPTION = "xception"  # x/127.5 - 1
    CAFFE = "caffe"  # BGR minus ImageNet means (ResNet50, VGG)
    UNIT = "unit"  # x/255
    NONE = "none"


class GatewaySettings(_Strict):
    """The preprocessing gateway in front of TF Serving (`tfserving:gateway`)."""

    enabled: bool = False
    # A prebuilt, pinned gateway image; without one the program builds gateway/Dockerfile.
    image: str | None = None
    resources: Resources = Resources(
        requests=ResourceAmounts(cpu="250m", memory="128Mi"),
        limits=ResourceAmounts(cpu="1", memory="512Mi"),
    )
    service: ServiceSettings = ServiceSettings()
    autoscaling: AutoscalingSettings = AutoscalingSettings.model_validate(
        {"minReplicas": 1, "maxReplicas": 5, "targetCpuUtilization": 60}
    )
    # The model's interface, as the gateway app's GATEWAY_* settings (see gateway/README.md).
    signature_name: str = Field(default="serving_default", alias="signatureName")
    input_name: str = Field(default="input_8", alias="inputName")
    output_name: str = Field(default="dense_7", alias="outputName")
    image_size: int = Field(default=299, alias="imageSize")
    preprocessing: Annotated[Preprocessing, _choice(Preprocessing)] = Preprocessing.XCEPTION
    labels: list[str] | None = None
    labels_file: str | None = Field(default=None, alias="labelsFile")
    softmax: bool = True
    top_k: int = Field(default=3, alias="topK")
    max_download_bytes: int = Field(default=10 * 1024 * 1024, alias="maxDownloadBytes")
    download_timeout_seconds: float | int = Field(default=10, alias="downloadTimeoutSeconds")
    model_deadline_seconds: float | int = Field(default=5, alias="modelDeadlineSeconds")
    allowed_internal: list[str] = Field(default_factory=list, alias="allowedInternal")
    # Predictions one replica accepts at once; beyond it answers 503 so clients retry elsewhere.
    # 16 x (10 MiB body + tensors) fits the default 512Mi limit.
    max_in_flight: int = Field(default=16, alias="maxInFlight")

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str | None) -> str | None:
        return None if value is None else _pinned_image(value)

    @field_validator("image_size")
    @classmethod
    def _size(cls, value: int) -> int:
        if not 8 <= value <= 4096:
            raise ValueError(f"must be between 8 and 4096 pixels, got {value}")
        return value

    @field_validator("max_download_bytes")
    @classmethod
    def _download_cap(cls, value: int) -> int:
        if not 1024 <= value <= 100 * 1024 * 1024:
            raise ValueError(f"must be between 1024 and 104857600 bytes, got {value}")
        return value

    @field_validator("download_timeout_seconds", "model_deadline_seconds")
    @classmethod
    def _seconds(cls, value: float) -> float:
        if not 0 < value <= 300:
            raise ValueError(f"must be more than 0 and at most 300 seconds, got {value}")
        return value

    @field_validator("allowed_internal")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if not _HOSTNAME.match(entry):
                    raise ValueError(
                        f"entries must be CIDRs or host names, got {entry!r}"
                    ) from None
        return value

    @field_validator("max_in_flight")
    @classmethod
    def _in_flight(cls, value: int) -> int:
        if not 1 <= value <= 10_000:
            raise ValueError(f"must be between 1 and 10000, got {value}")
        return value

    @field_validator("top_k")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be >= 1, got {value}")
        return value

    @model_validator(mode="after")
    def _labels_and_top_k(self) -> Self:
        if self.labels is not None and self.labels_file is not None:
            raise _at("labelsFile", "cannot be combined with labels: give one of them")
        labels = self.label_list
        if labels is not None:
            if len(labels) < 2 or len(set(labels)) != len(labels):
                raise _at("labels", f"must hold at least two distinct labels, got {labels}")
            if any("," in label for label in labels):
                raise _at("labels", "must not contain commas")
            if self.top_k > len(labels):
                raise _at(
                    "topK", f"must be <= the number of labels ({len(labels)}), got {self.top_k}"
                )
        return self

    @property
    def image_tag(self) -> str:
        return _image_tag(self.image or "")

    @property
    def label_list(self) -> list[str] | None:
        if self.labels_file is None:
            return self.labels
        path = Path(self.labels_file)
        path = path if path.is_absolute() else PROJECT_ROOT / path
        if not path.is_file():
            raise _at("labelsFile", f"must be a file with one label per line, {path} is not")
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]


class Settings(_Strict):
    """The whole `tfserving:*` namespace of a stack's config."""

    target: Annotated[Target, _choice(Target)] = Target.MINIKUBE
    namespace: str = NAMESPACE
    kube_context: str = Field(default="minikube", alias="kubeContext")
    # No class-level default: the default model directory is checked at parse time, not import.
    model: ModelSettings
    server: ServerSettings = ServerSettings()
    service: ServiceSettings = ServiceSettings()
    autoscaling: AutoscalingSettings = AutoscalingSettings()
    # Target eks only; filled with defaults there (see _eks_defaults), None on minikube.
    cluster: ClusterSettings | None = None
    registry: RegistrySettings | None = None
    gateway: GatewaySettings = GatewaySettings()

    @model_validator(mode="before")
    @classmethod
    def _eks_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("target") == Target.EKS.value:
            data = {"cluster": {}, "registry": {}, **data}
        return data

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return _dns_label(value)

    @model_validator(mode="after")
    def _target_keys(self) -> Self:
        # An error, not a warning: a key that silently does nothing hides a wrong target.
        for key in ("cluster", "registry"):
            if self.target is not Target.EKS and getattr(self, key) is not None:
                raise _at(key, f"only applies to target eks, not {self.target.value}")
        return self


# Keys whose values are objects (arrive from Pulumi as JSON text); the rest are plain strings.
_STRUCTURED = frozenset(
    {"model", "server", "service", "autoscaling", "cluster", "registry", "gateway"}
)
_SCALAR = frozenset({"target", "namespace", "kubeContext"})


def parse(raw: Mapping[str, str]) -> Settings:
    """Validate `{"tfserving:model": "<json>", "tfserving:target": "eks", ...}`."""
    problems: list[str] = []
    document: dict[str, Any] = {}
    for full_key, text in sorted(raw.items()):
        key = full_key.split(":", 1)[1]
        if key in _SCALAR:
            document[key] = text
        elif key in _STRUCTURED:
            try:
                document[key] = json.loads(text)
            except json.JSONDecodeError:
                problems.append(f"{full_key} must be a mapping of settings, got {text!r}")
        else:
            known = ", ".join(sorted(_SCALAR | _STRUCTURED))
            problems.append(f"{full_key} is not a known setting (known: {known})")
    if problems:
        raise SettingsError(problems)
    document.setdefault("model", {})
    try:
        return Settings.model_validate(document)
    except ValidationError as error:
        raise SettingsError([_describe(e) for e in error.errors()]) from None


def load() -> Settings:
    """Read every `tfserving:*` key of the running stack (CLI or mock runtime) and validate it."""
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return parse({k: str(v) for k, v in merged.items() if k.startswith("tfserving:")})


def _key_path(loc: list[str | int]) -> str:
    """`["cluster", "nodeGroups", 0, "minSize"]` -> `tfserving:cluster.nodeGroups[0].minSize`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else ("." if path else "") + part
    return "tfserving:" + path if path else "tfserving"


def _describe(error: Mapping[str, Any]) -> str:
    loc: list[str | int] = [p if isinstance(p, int) else str(p) for p in error["loc"]]
    message = str(error["msg"])
    ctx = error.get("ctx") or {}
    if "error" in ctx:
        message = str(ctx["error"])
    if message.startswith("@"):  # a model validator naming a sibling field
        _, field, message = message.split("@", 2)
        loc.append(field)
    path = _key_path(loc)
    if error["type"] == "value_error":
        return f"{path} {message}"
    if error["type"] == "extra_forbidden":
        return f"{path} is not a known setting (check the spelling)"
    if error["type"] == "missing":
        return f"{path} is required"
    return f"{path}: {message[:1].lower()}{message[1:]}, got {error['input']!r}"
