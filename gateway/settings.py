"""Gateway settings: read once at start-up from the environment, through `gateway.contract`.

Every variable is GATEWAY_<FIELD> except PORT. The contract holds each variable's type, limits
and grammar; the Pulumi program validates the stack's settings with the same contract, so what
it deploys is what this loader accepts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway import contract as c
from gateway.contract import ContractError, LogLevel, Preprocessing, ResizeFilter
from gateway.netguard import AddressPolicy

CLOTHING_LABELS = c.CLOTHING_LABELS
# Decode threads when GATEWAY_WORKER_THREADS is 0: the CPUs this process may use, at most this.
AUTO_THREADS_MAX = 4


@dataclass(frozen=True)
class Settings:
    """Checked settings; constructing one with a bad value raises ContractError."""

    listen_port: int = c.LISTEN_PORT.default
    bind_host: str = c.BIND_HOST.default
    tf_serving_target: str = c.TF_SERVING_TARGET.default
    model_name: str = c.MODEL_NAME.default
    model_version: int | None = c.MODEL_VERSION.default
    signature_name: str = c.SIGNATURE_NAME.default
    input_name: str = c.INPUT_NAME.default
    output_name: str = c.OUTPUT_NAME.default
    model_deadline_seconds: float = c.MODEL_DEADLINE_SECONDS.default
    image_size: int = c.IMAGE_SIZE.default
    preprocessing: Preprocessing = c.PREPROCESSING.default
    resize_filter: ResizeFilter = c.RESIZE_FILTER.default
    jpeg_draft: bool = c.JPEG_DRAFT.default
    labels: tuple[str, ...] = c.LABELS.default
    softmax: bool = c.SOFTMAX.default
    top_k: int = c.TOP_K.default
    max_download_bytes: int = c.MAX_DOWNLOAD_BYTES.default
    download_timeout_seconds: float = c.DOWNLOAD_TIMEOUT_SECONDS.default
    max_pixels: int = c.MAX_PIXELS.default
    allowed_internal: tuple[str, ...] = c.ALLOWED_INTERNAL.default
    max_redirects: int = c.MAX_REDIRECTS.default
    max_in_flight: int = c.MAX_IN_FLIGHT.default
    memory_limit_bytes: int = c.MEMORY_LIMIT_BYTES.default
    memory_budget_percent: int = c.MEMORY_BUDGET_PERCENT.default
    max_connections: int = c.MAX_CONNECTIONS.default
    header_timeout_seconds: float = c.HEADER_TIMEOUT_SECONDS.default
    min_upload_bytes_per_second: int = c.MIN_UPLOAD_BYTES_PER_SECOND.default
    ready_cache_seconds: float = c.READY_CACHE_SECONDS.default
    ready_timeout_seconds: float = c.READY_TIMEOUT_SECONDS.default
    worker_threads: int = c.WORKER_THREADS.default
    log_level: LogLevel = c.LOG_LEVEL.default
    access_log: bool = c.ACCESS_LOG.default
    metrics_port: int = c.METRICS_PORT.default
    api_keys_file: str = c.API_KEYS_FILE.default
    canary_label: str = c.CANARY_LABEL.default
    canary_percent: int | float = c.CANARY_PERCENT.default
    stable_label: str = c.STABLE_LABEL.default
    shutdown_seconds: float = c.SHUTDOWN_SECONDS.default

    def __post_init__(self) -> None:
        problems: list[str] = []
        for field in dataclasses.fields(self):
            var = c.BY_FIELD[field.name]
            try:
                # check() also turns canonical strings into enums and lists into tuples.
                object.__setattr__(
                    self, field.name, _as_stored(var.check(getattr(self, field.name)))
                )
            except ContractError as error:
                problems.append(f"  {var.env}: {error}")
        if not problems:
            try:
                c.check_together(dataclasses.asdict(self))
            except ContractError as error:
                problems.append(f"  {c.BY_FIELD[error.field or ''].env}: {error}")
        if problems:
            raise SettingsError(problems)

    @property
    def address_policy(self) -> AddressPolicy:
        return AddressPolicy.from_entries(self.allowed_internal)

    @property
    def drain_seconds(self) -> float:
        """After SIGTERM: GATEWAY_SHUTDOWN_SECONDS, else the longest a request can take."""
        return c.shutdown_seconds(dataclasses.asdict(self))

    @property
    def threads(self) -> int:
        """Decode threads: GATEWAY_WORKER_THREADS, else the CPUs this process may use (max 4)."""
        if self.worker_threads:
            return self.worker_threads
        return max(1, min(AUTO_THREADS_MAX, len(os.sched_getaffinity(0))))


def _as_stored(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class SettingsError(ValueError):
    """Invalid configuration; the message names each offending environment variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid gateway configuration:\n" + "\n".join(problems))


def env_name(field: str) -> str:
    """The environment variable that sets a field."""
    return c.BY_FIELD[field].env


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the environment (or `environ`) and overrides by field name (tests), each a
    typed value or environment text. Every problem is reported at once, naming its variable."""
    unknown = sorted(set(overrides) - set(c.BY_FIELD))
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(unknown)}")
    source = os.environ if environ is None else environ
    texts = {var.field: source[var.env] for var in c.VARS if var.env in source}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field, raw in {**texts, **overrides}.items():
        var = c.BY_FIELD[field]
        try:
            values[field] = var.parse(raw) if isinstance(raw, str) else raw
        except ContractError as error:
            problems.append(f"  {var.env}: {error}")
    try:
        settings = Settings(**values)
    except SettingsError as error:
        raise SettingsError(problems + error.problems) from None
    if problems:
        raise SettingsError(problems)
    return settings
