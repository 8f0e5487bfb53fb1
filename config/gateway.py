"""`tfserving:gateway`: the preprocessing gateway in front of TF Serving.

The model-interface keys are the gateway's own settings (`gateway/contract.py`): each is checked
here by the very function the gateway runs on its environment at start-up, so a stack that
previews green never deploys a gateway that refuses to start.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainValidator,
    PrivateAttr,
    model_validator,
)

from config.base import DnsLabel, PinnedImage, Strict, image_tag
from config.errors import InvalidSettingError
from config.paths import PROJECT_ROOT
from config.service import ServiceSettings
from config.workload import AutoscalingSettings, Resources, autoscaling, resources
from gateway import contract as c
from gateway.contract import ContractError, Preprocessing


def checked(var: c.Var[Any]) -> AfterValidator:
    """The contract's check for a value of the right type."""
    return AfterValidator(var.check)


def parsed(var: c.Var[Any]) -> BeforeValidator:
    """The contract's parser for text (enumerations: aliases and case as the gateway reads them)."""
    return BeforeValidator(lambda value: var.parse(value) if isinstance(value, str) else value)


@dataclass(frozen=True)
class ApiKeys:
    """`tfserving:gatewayApiKeys`: the keys clients must send, a Pulumi secret.

    `encrypted`: the value is the stack file's ciphertext (`{secure: ...}`), which an offline
    render cannot read; the rendered Secret then holds no key, so a gateway started from it
    refuses to start rather than run open.
    """

    keys: tuple[str, ...]
    encrypted: bool = False


API_KEYS_EXAMPLE = "pulumi config set --secret tfserving:gatewayApiKeys '[\"<key>\"]'"


def api_keys(value: object) -> ApiKeys:
    """A JSON list of keys (as the engine hands over the decrypted value), checked by the
    gateway's own rules; messages name a key's position and length, never its text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"must be a JSON list of API keys: {API_KEYS_EXAMPLE}") from None
    if isinstance(value, dict) and set(value) == {"secure"}:
        return ApiKeys((), encrypted=True)
    if not isinstance(value, list):
        raise ValueError(f"must be a JSON list of API keys: {API_KEYS_EXAMPLE}")
    try:
        return ApiKeys(c.check_api_keys(value))
    except ContractError as error:
        raise ValueError(f"{error}; a key: openssl rand -base64 32") from None


# The stack key's type: the engine hands the value over as text, validated here whole.
ApiKeysSetting = Annotated[ApiKeys | None, PlainValidator(api_keys)]


class CanarySettings(Strict):
    """`percent` of the gateway's requests go to the model version labelled `label`, the rest to
    `stableLabel` (both are labels of the gateway's model). 0 rolls back, 100 promotes."""

    label: Annotated[str, checked(c.CANARY_LABEL)]
    percent: Annotated[int | float, checked(c.CANARY_PERCENT)]
    stable_label: Annotated[str, checked(c.STABLE_LABEL)] = Field(
        default=c.STABLE_LABEL.default, alias="stableLabel"
    )

    @model_validator(mode="after")
    def _label_given(self) -> Self:
        if not self.label:
            raise InvalidSettingError("must name a version label of the model", at="label")
        return self


class GatewaySettings(Strict):
    """The gateway tier: its image, resources, Service, autoscaling and model interface."""

    enabled: bool = False
    # Which served model the gateway calls (tfserving:models); default the first.
    model_name: Annotated[str | None, Field(alias="model")] = None
    # A prebuilt, pinned gateway image; without one the program builds gateway/Dockerfile.
    image: PinnedImage | None = None
    resources: Resources = resources(requests=("250m", "128Mi"), limits=("1", "512Mi"))
    service: ServiceSettings = ServiceSettings()
    autoscaling: AutoscalingSettings = autoscaling(1, 5, 60)
    signature_name: Annotated[str, checked(c.SIGNATURE_NAME)] = Field(
        default=c.SIGNATURE_NAME.default, alias="signatureName"
    )
    input_name: Annotated[str, checked(c.INPUT_NAME)] = Field(
        default=c.INPUT_NAME.default, alias="inputName"
    )
    output_name: Annotated[str, checked(c.OUTPUT_NAME)] = Field(
        default=c.OUTPUT_NAME.default, alias="outputName"
    )
    image_size: Annotated[int, checked(c.IMAGE_SIZE)] = Field(
        default=c.IMAGE_SIZE.default, alias="imageSize"
    )
    preprocessing: Annotated[Preprocessing, parsed(c.PREPROCESSING), checked(c.PREPROCESSING)] = (
        c.PREPROCESSING.default
    )
    labels: Annotated[list[str], AfterValidator(c.LABELS.check)] | None = None
    labels_file: str | None = Field(default=None, alias="labelsFile")
    softmax: Annotated[bool, checked(c.SOFTMAX)] = c.SOFTMAX.default
    top_k: Annotated[int, checked(c.TOP_K)] = Field(default=c.TOP_K.default, alias="topK")
    max_download_bytes: Annotated[int, checked(c.MAX_DOWNLOAD_BYTES)] = Field(
        default=c.MAX_DOWNLOAD_BYTES.default, alias="maxDownloadBytes"
    )
    download_timeout_seconds: Annotated[float | int, checked(c.DOWNLOAD_TIMEOUT_SECONDS)] = Field(
        default=c.DOWNLOAD_TIMEOUT_SECONDS.default, alias="downloadTimeoutSeconds"
    )
    model_deadline_seconds: Annotated[float | int, checked(c.MODEL_DEADLINE_SECONDS)] = Field(
        default=c.MODEL_DEADLINE_SECONDS.default, alias="modelDeadlineSeconds"
    )
    allowed_internal: Annotated[list[str], AfterValidator(c.ALLOWED_INTERNAL.check)] = Field(
        default_factory=list, alias="allowedInternal"
    )
    # Predictions one replica accepts at once; beyond it answers 503 so clients retry elsewhere.
    max_in_flight: Annotated[int, checked(c.MAX_IN_FLIGHT)] = Field(
        default=c.MAX_IN_FLIGHT.default, alias="maxInFlight"
    )
    canary: CanarySettings | None = None
    # Namespaces whose pods may scrape /metrics (its own port, not on the Service).
    metrics_namespaces: list[DnsLabel] = Field(
        default_factory=lambda: ["monitoring"], alias="metricsNamespaces"
    )
    _labels: tuple[str, ...] = PrivateAttr(default=c.LABELS.default)

    @model_validator(mode="after")
    def _labels_and_threads(self) -> Self:
        ignored = sorted(self.model_fields_set - {"enabled"})
        if not self.enabled and ignored:
            key = type(self).model_fields[ignored[0]].alias or ignored[0]
            raise InvalidSettingError(
                "has no effect while gateway.enabled is false: add enabled: true to deploy the "
                "gateway, or remove the gateway settings",
                at=key,
            )
        if self.labels is not None and self.labels_file is not None:
            raise InvalidSettingError(
                "cannot be combined with labels: give one of them", "labelsFile"
            )
        if self.labels is not None:
            self._labels = tuple(self.labels)
        elif self.labels_file is not None:
            self._labels = _read_labels(self.labels_file)
        try:
            c.WORKER_THREADS.check(self.resources.cpu_threads)
        except ContractError as error:
            raise InvalidSettingError(
                f"({self.resources.limits.cpu}) gives one decode thread per core, and the "
                f"gateway's {c.WORKER_THREADS.env} {error}",
                at="resources.limits.cpu",
            ) from None
        try:
            c.check_together(c.with_defaults(self.contract_values()))
        except ContractError as error:
            raise InvalidSettingError(str(error), at=_KEYS[error.field or ""]) from None
        return self

    @property
    def label_list(self) -> tuple[str, ...]:
        """The class names in the model's output order (from labels, labelsFile or the default)."""
        return self._labels

    @property
    def image_tag(self) -> str:
        return image_tag(self.image or "")

    def contract_values(self) -> dict[str, Any]:
        """The gateway settings this stack sets, by the gateway's field names."""
        values = {var.field: getattr(self, attribute) for attribute, var in _VARS.items()}
        values[c.WORKER_THREADS.field] = self.resources.cpu_threads
        # Left out when not set, so the gateway's own defaults apply.
        if self.labels is not None or self.labels_file is not None:
            values[c.LABELS.field] = self._labels
        if self.allowed_internal:
            values[c.ALLOWED_INTERNAL.field] = tuple(self.allowed_internal)
        if self.canary is not None:
            values[c.CANARY_LABEL.field] = self.canary.label
            values[c.CANARY_PERCENT.field] = self.canary.percent
            values[c.STABLE_LABEL.field] = self.canary.stable_label
        return values


def _read_labels(labels_file: str) -> tuple[str, ...]:
    path = Path(labels_file)
    path = path if path.is_absolute() else PROJECT_ROOT / path
    if not path.is_file():
        raise InvalidSettingError(
            f"must be a file with one label per line, {path} is not", "labelsFile"
        )
    try:
        return c.LABELS.check(c.read_labels_file(path.read_text(encoding="utf-8")))
    except ContractError as error:
        raise InvalidSettingError(f"({path}) {error}", "labelsFile") from None
    except UnicodeDecodeError:
        raise InvalidSettingError(f"({path}) must be UTF-8 text", "labelsFile") from None


# Stack keys that are gateway settings: Python attribute -> contract variable, and the stack key
# (the alias) of each contract field, for messages.
_VARS: dict[str, c.Var[Any]] = {
    "signature_name": c.SIGNATURE_NAME,
    "input_name": c.INPUT_NAME,
    "output_name": c.OUTPUT_NAME,
    "image_size": c.IMAGE_SIZE,
    "preprocessing": c.PREPROCESSING,
    "softmax": c.SOFTMAX,
    "top_k": c.TOP_K,
    "max_download_bytes": c.MAX_DOWNLOAD_BYTES,
    "download_timeout_seconds": c.DOWNLOAD_TIMEOUT_SECONDS,
    "model_deadline_seconds": c.MODEL_DEADLINE_SECONDS,
    "max_in_flight": c.MAX_IN_FLIGHT,
}
_KEYS: dict[str, str] = {
    **{
        var.field: GatewaySettings.model_fields[attribute].alias or attribute
        for attribute, var in _VARS.items()
    },
    c.LABELS.field: "labels",
    c.ALLOWED_INTERNAL.field: "allowedInternal",
    c.WORKER_THREADS.field: "resources.limits.cpu",
    c.CANARY_LABEL.field: "canary.label",
    c.CANARY_PERCENT.field: "canary.percent",
    c.STABLE_LABEL.field: "canary.stableLabel",
}
STACK_KEYS: dict[str, c.Var[Any]] = {
    **{GatewaySettings.model_fields[a].alias or a: var for a, var in _VARS.items()},
    "labels": c.LABELS,
    "allowedInternal": c.ALLOWED_INTERNAL,
}
