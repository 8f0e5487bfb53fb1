"""Typed stack settings: the `tfserving:*` config read once, validated, with defaults.

Everything downstream takes these objects, never raw config. A bad value stops the program
before any resource is registered, with a message that names the key path, e.g.
`tfserving:autoscaling.maxReplicas must be >= minReplicas (2), got 1`.
"""

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import (
    BaseModel,
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
    source: ModelSource = ModelSource.CONFIGMAP
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
        if value not in [s.value for s in ModelSource]:
            raise ValueError(f"must be one of configmap, image, gcs, got {value!r}")
        return ModelSource(value)

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


class ServerSettings(_Strict):
    image: str = "tensorflow/serving:2.19.1"
    resources: Resources = Resources()

    @field_validator("image")
    @classmethod
    def _pinned_image(cls, value: str) -> str:
        if "@sha256:" in value:
            return value
        last_segment = value.rsplit("/", 1)[-1]
        if ":" not in last_segment:
            raise ValueError(f"must be pinned to a tag or digest, got untagged {value!r}")
        if last_segment.rsplit(":", 1)[1] == "latest":
            raise ValueError(f"must be pinned to a version, not ':latest', got {value!r}")
        return value

    @property
    def tag(self) -> str:
        if "@sha256:" in self.image:
            return self.image.rsplit("@sha256:", 1)[1][:12]
        return self.image.rsplit(":", 1)[1]


class ServiceSettings(_Strict):
    type: ServiceType = ServiceType.NODE_PORT
    node_port: int | None = Field(default=None, alias="nodePort")
    allowed_source_ranges: list[str] | None = Field(default=None, alias="allowedSourceRanges")

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: object) -> object:
        if value not in [t.value for t in ServiceType]:
            raise ValueError(f"must be one of NodePort, LoadBalancer, ClusterIP, got {value!r}")
        return ServiceType(value)

    @field_validator("node_port")
    @classmethod
    def _node_port_range(cls, value: int | None) -> int | None:
        if value is not None and not 30000 <= value <= 32767:
            raise ValueError(f"must be in the NodePort range 30000-32767, got {value}")
        return value

    @model_validator(mode="after")
    def _fits_type(self) -> Self:
        if self.node_port is not None and self.type is not ServiceType.NODE_PORT:
            raise _at("nodePort", f"only applies to type NodePort, not {self.type.value}")
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


class Settings(_Strict):
    """The whole `tfserving:*` namespace of a stack's config."""

    target: Target = Target.MINIKUBE
    namespace: str = NAMESPACE
    kube_context: str = Field(default="minikube", alias="kubeContext")
    # No class-level default: the default model directory is checked at parse time, not import.
    model: ModelSettings
    server: ServerSettings = ServerSettings()
    service: ServiceSettings = ServiceSettings()
    autoscaling: AutoscalingSettings = AutoscalingSettings()

    @field_validator("target", mode="before")
    @classmethod
    def _known_target(cls, value: object) -> object:
        if value not in [t.value for t in Target]:
            raise ValueError(f"must be one of minikube, eks, got {value!r}")
        return Target(value)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return _dns_label(value)


# Keys whose values are objects (arrive from Pulumi as JSON text); the rest are plain strings.
_STRUCTURED = frozenset({"model", "server", "service", "autoscaling"})
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


def _describe(error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    message = str(error["msg"])
    ctx = error.get("ctx") or {}
    if "error" in ctx:
        message = str(ctx["error"])
    if message.startswith("@"):  # a model validator naming a sibling field
        _, field, message = message.split("@", 2)
        loc.append(field)
    path = "tfserving:" + ".".join(loc) if loc else "tfserving"
    if error["type"] == "value_error":
        return f"{path} {message}"
    if error["type"] == "extra_forbidden":
        return f"{path} is not a known setting (check the spelling)"
    if error["type"] == "missing":
        return f"{path} is required"
    return f"{path}: {message[:1].lower()}{message[1:]}, got {error['input']!r}"
