"""`tfserving:model`: which SavedModel to serve and how it reaches TF Serving.

A local model folder (sources `configmap` and `image`) is inspected once, when the settings are
validated, into a `ModelFolder`: its numbered versions and files. Components read that value and
never walk the folder again.
"""

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import (
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    field_validator,
    model_validator,
)

from config.base import Strict, choice
from config.errors import InvalidSettingError
from config.paths import PROJECT_ROOT
from config.quantity import Quantity, quantity
from gateway.contract import MODEL_NAME_PATTERN

# A ConfigMap (data + binaryData) is capped at 1 MiB by the API server.
CONFIGMAP_MAX_BYTES = 1024 * 1024
# Leave room for the object's metadata and the key names inside that 1 MiB.
CONFIGMAP_MODEL_BUDGET = CONFIGMAP_MAX_BYTES - 16 * 1024
_VERSION_DIR = re.compile(r"^\d+$")
_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
# Bucket names: 3-63 lowercase letters, digits, '.' and '-'; then a prefix ending in the name.
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^/]+)+$")


class ModelSource(StrEnum):
    CONFIGMAP = "configmap"  # files in a ConfigMap (1 MiB at most)
    IMAGE = "image"  # baked into TF Serving's image
    GCS = "gcs"  # TF Serving reads gs:// itself
    S3 = "s3"  # copied from S3 by an init container (TF Serving dropped S3 in 2.7), eks only


@dataclass(frozen=True)
class ModelFile:
    """One file of a SavedModel, relative to the model's base directory (`1/saved_model.pb`)."""

    relative_path: str
    source: Path
    size: int

    @property
    def configmap_key(self) -> str:
        # ConfigMap keys cannot hold '/'; the volume's items map each key back to its path.
        return self.relative_path.replace("/", "__")


@dataclass(frozen=True)
class ModelFolder:
    """A local SavedModel base directory: numbered versions, each with a saved_model.pb."""

    directory: Path
    versions: tuple[int, ...]
    files: tuple[ModelFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @classmethod
    def inspect(cls, directory: Path) -> "ModelFolder":
        """Walk the folder once; files of every numbered version, in a stable order."""
        versions = sorted(
            int(p.name)
            for p in directory.iterdir()
            if p.is_dir() and _VERSION_DIR.fullmatch(p.name) and (p / "saved_model.pb").is_file()
        )
        files = tuple(
            ModelFile(file.relative_to(directory).as_posix(), file, file.stat().st_size)
            for version in versions
            for file in sorted(p for p in (directory / str(version)).rglob("*") if p.is_file())
        )
        return cls(directory, tuple(versions), files)


class VersionPolicy(Strict):
    """Which versions TF Serving loads: `{latest: N}`, `{all: true}` or `{specific: [3, 4]}`."""

    latest: int | None = None
    all: bool | None = None
    specific: list[int] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in ("latest", "all", "specific") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "must be exactly one of {latest: N}, {all: true} or {specific: [versions]}, "
                f"got {', '.join(given) or 'none'}"
            )
        if self.latest is not None and not 1 <= self.latest <= 100:
            raise InvalidSettingError(f"must be between 1 and 100, got {self.latest}", "latest")
        if self.all is False:
            raise InvalidSettingError("must be true when given (or use latest/specific)", "all")
        if self.specific is not None:
            if not self.specific or any(v < 1 for v in self.specific):
                raise InvalidSettingError(
                    f"must list version numbers >= 1, got {self.specific}", "specific"
                )
            if len(set(self.specific)) != len(self.specific):
                raise InvalidSettingError("must not repeat a version", "specific")
        return self

    def loaded(self, available: tuple[int, ...]) -> tuple[int, ...]:
        """The versions loaded out of those available."""
        if self.latest is not None:
            return available[-self.latest :]
        if self.all:
            return available
        return tuple(sorted(v for v in available if v in (self.specific or [])))


def _size_limit(value: object) -> Quantity:
    amount = quantity(value)
    if not 1024 * 1024 <= amount.amount <= 1024**4:
        raise ValueError(f"must be between 1Mi and 1Ti, got {value!r}")
    return amount


class ModelSettings(Strict):
    name: str = "half_plus_two"
    source: Annotated[ModelSource, choice(ModelSource)] = ModelSource.CONFIGMAP
    path: str | None = "models/half_plus_two"
    uri: str | None = None
    # The versions to load (default: the newest) and labels naming some of them.
    version_policy: Annotated[VersionPolicy | None, Field(alias="versionPolicy")] = None
    labels: dict[str, int] | None = None
    # source s3: the volume the init container copies the model into (all copied versions).
    size_limit: Annotated[
        Quantity | None,
        PlainValidator(_size_limit),
        PlainSerializer(str, when_used="unless-none"),
        Field(alias="sizeLimit"),
    ] = None
    _folder: ModelFolder | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not MODEL_NAME_PATTERN.fullmatch(value):
            raise ValueError(
                "must start with a letter or digit and hold only letters, digits, '_', '.' "
                f"and '-', at most 128 (it is part of TF Serving's URL and file path), "
                f"got {value!r}"
            )
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        for label, version in (value or {}).items():
            if not _LABEL.fullmatch(label):
                raise ValueError(
                    f"names must be letters, digits, '_' or '-' starting with a letter, got "
                    f"{label!r}"
                )
            if version < 1:
                raise ValueError(f"must point at versions >= 1, got {label}: {version}")
        return value

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("gs://", "s3://")):
            raise ValueError(f"must be a gs:// or s3:// URI, got {value!r}")
        if value.startswith("s3://") and not _S3_URI.fullmatch(value.rstrip("/")):
            raise ValueError(
                f"must be s3://<bucket>/<prefix>/<name> with a valid bucket name, got {value!r}"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _source_fields(self) -> Self:
        remote = self.source in (ModelSource.GCS, ModelSource.S3)
        if self.size_limit is not None and self.source is not ModelSource.S3:
            raise InvalidSettingError(
                f"only applies to source s3, not {self.source.value}", at="sizeLimit"
            )
        if remote:
            self._check_remote()
        else:
            if self.uri is not None:
                raise InvalidSettingError(
                    f"only applies to sources gcs and s3, not {self.source.value}", at="uri"
                )
            if not self.path:
                raise InvalidSettingError(
                    f"is required when source is {self.source.value}", at="path"
                )
            self._folder = self._inspect_folder(self.path)
        self._check_labels()
        return self

    def _check_remote(self) -> None:
        scheme = "gs" if self.source is ModelSource.GCS else "s3"
        if self.uri is None:
            raise InvalidSettingError(
                f"is required when source is {self.source.value} ({scheme}://bucket/path/<name>)",
                at="uri",
            )
        if not self.uri.startswith(f"{scheme}://"):
            raise InvalidSettingError(
                f"must be a {scheme}:// URI for source {self.source.value}, got {self.uri!r}",
                at="uri",
            )
        if "path" in self.model_fields_set and self.path is not None:
            raise InvalidSettingError(
                f"only applies to sources configmap and image, not {self.source.value}", "path"
            )
        if self.uri.rsplit("/", 1)[-1] != self.name:
            # TF Serving reads <base path>/<name>/<version>/.
            raise InvalidSettingError(
                f"must end with the model name '/{self.name}', got {self.uri!r}", at="uri"
            )
        if self.source is ModelSource.S3 and self.size_limit is None:
            raise InvalidSettingError(
                "is required for source s3: the size of the volume the model is copied into "
                "(all versions it loads), e.g. 2Gi",
                at="sizeLimit",
            )

    def _check_labels(self) -> None:
        if not self.labels:
            return
        served = self.served_versions
        for label, version in self.labels.items():
            if served is not None and version not in served:
                raise InvalidSettingError(
                    f"{label} points at version {version}, which TF Serving does not load "
                    f"(loaded: {', '.join(map(str, served)) or 'none'}); change versionPolicy",
                    at="labels",
                )

    @property
    def served_versions(self) -> tuple[int, ...] | None:
        """The versions TF Serving loads, when known before deploying (local folders, or a
        specific policy); None when only the bucket knows."""
        policy = self.version_policy or VersionPolicy(latest=1)
        if self._folder is not None:
            return policy.loaded(self._folder.versions)
        if policy.specific is not None:
            return tuple(sorted(policy.specific))
        return None

    @property
    def uses_config_file(self) -> bool:
        """A version policy or labels need TF Serving's model config file, not its flags."""
        return self.version_policy is not None or bool(self.labels)

    @property
    def bucket_and_prefix(self) -> tuple[str, str]:
        """source s3: ("bucket", "prefix/<name>")."""
        assert self.uri is not None and self.source is ModelSource.S3
        bucket, _, prefix = self.uri.removeprefix("s3://").partition("/")
        return bucket, prefix

    @property
    def size_bytes(self) -> int:
        """What the loaded versions take: the local files, or at most s3's sizeLimit; remote
        gcs models are not counted (their size is known only to the bucket)."""
        if self._folder is not None:
            served = set(self.served_versions or ())
            return sum(
                f.size
                for f in self._folder.files
                if int(f.relative_path.split("/", 1)[0]) in served
            )
        if self.size_limit is not None:
            return int(self.size_limit.amount)
        return 0

    def _inspect_folder(self, path: str) -> ModelFolder:
        candidate = Path(path)
        directory = candidate if candidate.is_absolute() else PROJECT_ROOT / candidate
        if not directory.is_dir():
            raise InvalidSettingError(
                f"must be a directory holding the model, {directory} is not", at="path"
            )
        folder = ModelFolder.inspect(directory)
        if not folder.versions:
            raise InvalidSettingError(
                f"must hold a numbered version directory with a saved_model.pb "
                f"(e.g. {path}/1/saved_model.pb); none found in {directory}",
                at="path",
            )
        if self.source is ModelSource.CONFIGMAP and folder.total_bytes > CONFIGMAP_MODEL_BUDGET:
            raise InvalidSettingError(
                f"holds {folder.total_bytes} bytes of model files, too big for a ConfigMap "
                f"(1 MiB limit); use source: image to bake the model into an image",
                at="path",
            )
        return folder

    @property
    def folder(self) -> ModelFolder:
        """The local model folder (sources configmap and image)."""
        if self._folder is None:
            raise ValueError(f"model source {self.source.value} has no local folder")
        return self._folder
