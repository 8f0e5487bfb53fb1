"""Gateway settings: read from environment variables once at start-up and validated.

Every variable is GATEWAY_<FIELD> except PORT. The prefix keeps clear of variables that
Kubernetes service links inject (e.g. a Service named "gateway" injects GATEWAY_PORT=tcp://...,
which is why the listening port is plain PORT).
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.netguard import AddressPolicy

ENV_PREFIX = "GATEWAY_"
MiB = 1024 * 1024
CLOTHING_LABELS = (
    "dress",
    "hat",
    "longsleeve",
    "outwear",
    "pants",
    "shirt",
    "shoes",
    "shorts",
    "skirt",
    "t-shirt",
)


class Preprocessing(StrEnum):
    """Pixel scaling applied to RGB uint8 input (names follow Keras' preprocess_input modes)."""

    XCEPTION = "xception"  # x/127.5 - 1 (Keras "tf" mode: Xception, Inception, MobileNet)
    CAFFE = "caffe"  # RGB->BGR, minus ImageNet BGR means (Keras "caffe" mode: ResNet50, VGG)
    UNIT = "unit"  # x/255, range 0..1
    NONE = "none"  # raw 0..255 as float32


_PREPROCESSING_ALIASES = {"tf": "xception", "resnet": "caffe", "resnet50": "caffe", "vgg": "caffe"}


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, populate_by_name=True
    )

    # Not named "port": the prefix would make it GATEWAY_PORT, which a Service named "gateway"
    # sets to "tcp://<ip>:<port>" in every pod of its namespace.
    listen_port: int = Field(9696, ge=1, le=65535, validation_alias="PORT")
    bind_host: str = "0.0.0.0"  # a container listens on all its interfaces

    tf_serving_target: str = Field("localhost:8500", min_length=1)
    model_name: str = Field("clothing-model", min_length=1)
    model_version: int | None = Field(None, ge=1)
    signature_name: str = Field("serving_default", min_length=1)
    input_name: str = Field("input_8", min_length=1)
    output_name: str = Field("dense_7", min_length=1)
    model_deadline_seconds: float = Field(5.0, gt=0, le=300)

    image_size: int = Field(299, ge=8, le=4096)
    preprocessing: Preprocessing = Preprocessing.XCEPTION
    resize_filter: Literal["nearest", "bilinear"] = "nearest"
    jpeg_draft: bool = True
    labels: Annotated[tuple[str, ...], NoDecode] = CLOTHING_LABELS
    softmax: bool = True
    top_k: int = Field(3, ge=1)

    max_download_bytes: int = Field(10 * MiB, ge=1024)
    download_timeout_seconds: float = Field(10.0, gt=0, le=300)
    max_pixels: int = Field(25_000_000, ge=64)
    allowed_internal: Annotated[tuple[str, ...], NoDecode] = ()
    max_redirects: int = Field(3, ge=0, le=10)

    # Concurrent POST /predict per replica; more are refused with 503 (see README, "Overload").
    max_in_flight: int = Field(16, ge=1, le=10_000)

    ready_cache_seconds: float = Field(2.0, ge=0)
    ready_timeout_seconds: float = Field(1.0, gt=0, le=60)
    worker_threads: int = Field(0, ge=0, le=64)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool = False

    @field_validator("model_version", mode="before")
    @classmethod
    def _empty_version_is_latest(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("tf_serving_target")
    @classmethod
    def _grpc_target(cls, value: str) -> str:
        value = value.strip()
        if value.startswith(("http://", "https://", "grpc://")):
            raise ValueError(
                "a gRPC target is host:port or dns:///host:port (TF Serving's gRPC port, "
                "usually 8500), not a URL"
            )
        return value

    @field_validator("preprocessing", mode="before")
    @classmethod
    def _preprocessing_alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return _PREPROCESSING_ALIASES.get(value, value)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("resize_filter", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        # "a,b,c" is a list; a value without a comma must be a file (one label per line).
        if isinstance(value, str) and "," not in value:
            path = Path(value.strip())
            if not path.is_file():
                raise ValueError(
                    f"{value!r} is neither a comma-separated list nor a readable labels file"
                )
            value = path.read_text(encoding="utf-8").replace("\n", ",")
        labels = _split_list(value)
        if isinstance(labels, tuple):
            if len(labels) < 2:
                raise ValueError("need at least two labels")
            if len(set(labels)) != len(labels):
                raise ValueError("labels must be unique")
        return labels

    @field_validator("allowed_internal", mode="before")
    @classmethod
    def _allowlist(cls, value: Any) -> Any:
        entries = _split_list(value)
        AddressPolicy.from_entries(entries)  # raises ValueError naming a bad entry
        return entries

    @property
    def address_policy(self) -> AddressPolicy:
        return AddressPolicy.from_entries(self.allowed_internal)

    @property
    def threads(self) -> int:
        """Decode threads: GATEWAY_WORKER_THREADS, else the CPUs this process may use (max 4)."""
        if self.worker_threads:
            return self.worker_threads
        return max(1, min(4, len(os.sched_getaffinity(0))))


def env_name(field: str) -> str:
    """The environment variable that sets a field."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + field.upper()


class SettingsError(Exception):
    """Invalid configuration; the message names each offending environment variable."""


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (plus overrides, used by tests) or raise SettingsError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            name = env_name(field) if field in Settings.model_fields else field
            lines.append(f"  {name}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError("invalid gateway configuration:\n" + "\n".join(lines)) from None
