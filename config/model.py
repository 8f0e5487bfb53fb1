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

from pydantic import PrivateAttr, field_validator, model_validator

from config.base import Strict, choice
from config.errors import InvalidSettingError
from config.paths import PROJECT_ROOT
from gateway.contract import MODEL_NAME_PATTERN

# A ConfigMap (data + binaryData) is capped at 1 MiB by the API server.
CONFIGMAP_MAX_BYTES = 1024 * 1024
# Leave room for the object's metadata and the key names inside that 1 MiB.
CONFIGMAP_MODEL_BUDGET = CONFIGMAP_MAX_BYTES - 16 * 1024
_VERSION_DIR = re.compile(r"^\d+$")


class ModelSource(StrEnum):
    CONFIGMAP = "configmap"
    IMAGE = "image"
    GCS = "gcs"


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
            if p.is_dir() and _VERSION_DIR.match(p.name) and (p / "saved_model.pb").is_file()
        )
        files = tuple(
            ModelFile(file.relative_to(directory).as_posix(), file, file.stat().st_size)
            for version in versions
            for file in sorted(p for p in (directory / str(version)).rglob("*") if p.is_file())
        )
        return cls(directory, tuple(versions), files)


class ModelSettings(Strict):
    name: str = "half_plus_two"
    source: Annotated[ModelSource, choice(ModelSource)] = ModelSource.CONFIGMAP
    path: str | None = "models/half_plus_two"
    uri: str | None = None
    _folder: ModelFolder | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not MODEL_NAME_PATTERN.match(value):
            raise ValueError(
                "must start with a letter or digit and hold only letters, digits, '_', '.' "
                f"and '-', at most 128 (it is part of TF Serving's URL and file path), "
                f"got {value!r}"
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
    def _gcs_uri(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith("s3://"):
            raise ValueError(
                "must not be an s3:// path: TF Serving removed S3 support in 2.7; "
                "use source: image to bake the model into an image instead"
            )
        if not value.startswith("gs://"):
            raise ValueError(f"must be a gs:// URI, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _source_fields(self) -> Self:
        if self.source is ModelSource.GCS:
            if self.uri is None:
                raise InvalidSettingError(
                    "is required when source is gcs (gs://bucket/path/<name>)", at="uri"
                )
            if "path" in self.model_fields_set and self.path is not None:
                raise InvalidSettingError(
                    "only applies to sources configmap and image, not gcs", "path"
                )
            if self.uri.rsplit("/", 1)[-1] != self.name:
                # The image's entrypoint reads ${MODEL_BASE_PATH}/${MODEL_NAME}.
                raise InvalidSettingError(
                    f"must end with the model name '/{self.name}', got {self.uri!r}", at="uri"
                )
            return self
        if self.uri is not None:
            raise InvalidSettingError(
                f"only applies to source gcs, not {self.source.value}", at="uri"
            )
        if not self.path:
            raise InvalidSettingError(f"is required when source is {self.source.value}", at="path")
        self._folder = self._inspect_folder(self.path)
        return self

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
