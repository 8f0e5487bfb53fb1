"""The gateway's configuration contract: every variable it reads, with its type, limits and grammar.

Standard library only. Two sides use it: the gateway's own loader (`gateway.settings`) reads its
environment through it, and the Pulumi program (`config/gateway.py`, `components/gateway.py`)
validates the stack's `tfserving:gateway` keys and writes the gateway's ConfigMap through it. A
value therefore passes the preview exactly when the gateway would start with it: a green
`pulumi up` is never followed by a pod that refuses its settings.

Each `Var` turns environment text into a typed value (`parse`), checks the value (`check`) and
writes it back as text (`render`). Messages name no key: each side prefixes its own
(`GATEWAY_IMAGE_SIZE` in the pod, `tfserving:gateway.imageSize` in the stack). The kinds of
variable (whole numbers, seconds, booleans, choices, names) are in `gateway.contract_kinds`.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from gateway.contract_keys import (
    API_KEY_HEADER,
    API_KEY_MAX_LENGTH,
    API_KEY_MIN_LENGTH,
    API_KEY_PATTERN,
    API_KEYS_FILE_MAX_BYTES,
    API_KEYS_FILE_PATH,
    API_KEYS_MAX,
    API_KEYS_MOUNT_DIR,
    API_KEYS_SECRET_KEY,
    AUTHORIZATION_HEADER,
    BEARER_SCHEME,
    WWW_AUTHENTICATE,
    check_api_key,
    check_api_keys,
    read_api_keys,
    render_api_keys,
)
from gateway.contract_kinds import (
    PREFIX,
    ContractError,
    Var,
    boolean,
    choice,
    integer,
    name,
    not_bool,
    parse_int,
    seconds,
)

# The API the Pulumi program uses, among others (the key file's format is in contract_keys).
__all__ = [
    "API_KEYS_FILE_MAX_BYTES", "API_KEYS_FILE_PATH", "API_KEYS_MAX", "API_KEYS_MOUNT_DIR",
    "API_KEYS_SECRET_KEY", "API_KEY_HEADER", "API_KEY_MAX_LENGTH", "API_KEY_MIN_LENGTH",
    "API_KEY_PATTERN", "AUTHORIZATION_HEADER", "BEARER_SCHEME", "PREFIX", "WWW_AUTHENTICATE",
    "ContractError", "Var", "check_api_key", "check_api_keys", "read_api_keys",
    "render_api_keys",
]  # fmt: skip
# The HTTP routes.
PREDICT_PATH = "/predict"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
MiB = 1024 * 1024
# TF Serving's model names end up in URLs and file paths (`/v1/models/<name>`, `/models/<name>`).
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# RFC 1123 host names, plus '_' (seen in internal DNS records); the last label is not numeric.
_HOST_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
HOSTNAME_PATTERN = re.compile(rf"^(?=.{{1,253}}$){_HOST_LABEL}(?:\.{_HOST_LABEL})*$")
# TF Serving version labels (`version_labels` in its model config), as the canary uses them.
VERSION_LABEL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_CANARY_PERCENT_TEXT = re.compile(r"^[0-9]{1,3}(\.[0-9])?$")
# Legacy IPv4 spellings (2130706433, 0x7f.1, 017700000001): a numeric last label is never a name.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class Preprocessing(StrEnum):
    """Pixel scaling of RGB input (names follow Keras' preprocess_input modes)."""

    XCEPTION = "xception"  # x/127.5 - 1 (Keras "tf" mode: Xception, Inception, MobileNet)
    CAFFE = "caffe"  # RGB->BGR, minus ImageNet BGR means (Keras "caffe" mode: ResNet50, VGG)
    UNIT = "unit"  # x/255, range 0..1
    NONE = "none"  # raw 0..255 as float32


class ResizeFilter(StrEnum):
    NEAREST = "nearest"  # as the course's gateway and Keras' load_img
    BILINEAR = "bilinear"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


PREPROCESSING_ALIASES = {"tf": "xception", "resnet": "caffe", "resnet50": "caffe", "vgg": "caffe"}
CLOTHING_LABELS: tuple[str, ...] = (
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


def _split(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def check_label(label: str) -> str:
    if not isinstance(label, str) or not label:
        raise ContractError(f"labels must be non-empty strings, got {label!r}")
    if "," in label or label != label.strip() or any(ord(c) < 32 for c in label):
        raise ContractError(
            f"labels must not contain commas, control characters or spaces at the ends, "
            f"got {label!r}"
        )
    return label


def _check_labels(value: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(value, tuple | list):
        raise ContractError(f"must be a list of labels, got {value!r}")
    labels = tuple(check_label(label) for label in value)
    if len(labels) < 2:
        raise ContractError(f"must hold at least two labels, got {len(labels)}")
    duplicates = sorted(label for label, n in Counter(labels).items() if n > 1)
    if duplicates:
        raise ContractError(f"must be unique, {duplicates[0]!r} appears more than once")
    return labels


def read_labels_file(text: str) -> tuple[str, ...]:
    """A labels file: one label per line, blank lines ignored."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _parse_labels(text: str) -> tuple[str, ...]:
    # "a,b,c" is a list; text without a comma is a file with one label per line.
    if "," in text:
        return _split(text)
    path = text.strip()
    try:
        with open(path, encoding="utf-8") as stream:
            return read_labels_file(stream.read())
    # ValueError: a NUL in the name; UnicodeDecodeError (a ValueError too): not UTF-8 text.
    except (OSError, ValueError):
        raise ContractError(
            f"{text!r} is neither a comma-separated list nor a readable labels file"
        ) from None


def allowlist_entry(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | str:
    """An allow-list entry as a network (CIDR or IP, brackets allowed) or a lower-case host name."""
    if not isinstance(entry, str) or not entry or entry != entry.strip():
        raise ContractError(
            f"allowlist entry {entry!r} must be a CIDR, an IP or a host name without spaces"
        )
    try:
        return ipaddress.ip_network(entry.removeprefix("[").removesuffix("]"), strict=False)
    except ValueError:
        pass
    host = entry.rstrip(".").lower()
    if not HOSTNAME_PATTERN.fullmatch(host) or _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        raise ContractError(f"allowlist entry {entry!r} is neither a CIDR/IP nor a host name")
    return host


def _check_allowlist(value: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(value, tuple | list):
        raise ContractError(f"must be a list of host names and CIDRs, got {value!r}")
    for entry in value:
        allowlist_entry(entry)
    return tuple(value)


def _parse_list(text: str) -> tuple[str, ...]:
    return _split(text)


def _check_target(value: str) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ContractError(f"must be a gRPC target like host:8500, got {value!r}")
    if "://" in value and not value.startswith("dns:"):
        raise ContractError(
            "must be host:port or dns:///host:port (TF Serving's gRPC port, usually 8500), "
            f"not a URL, got {value!r}"
        )
    return value


def _optional_version(text: str) -> int | None:
    return None if not text.strip() else parse_int(text)


def _check_version(value: int | None) -> int | None:
    if value is None:
        return None
    not_bool(value, "a version number")
    if not isinstance(value, int) or value < 1:
        raise ContractError(f"must be a version number >= 1 or empty (latest), got {value!r}")
    return value


def _check_key_file(value: str) -> str:
    if not isinstance(value, str):
        raise ContractError(f"must be a file path or empty (no API keys), got {value!r}")
    if value and (not value.startswith("/") or value != value.strip() or len(value) > 4096):
        raise ContractError(f"must be an absolute path or empty (no API keys), got {value!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ContractError(f"must not hold control characters, got {value!r}")
    return value


def _version_label(field: str, default: str) -> Var[str]:
    def check(value: str) -> str:
        if not isinstance(value, str) or (value and not VERSION_LABEL_PATTERN.fullmatch(value)):
            raise ContractError(
                "must be empty or a TF Serving version label (a letter, then letters, digits, "
                f"'_' or '-'; at most 63), got {value!r}"
            )
        return value

    return Var(field, PREFIX + field.upper(), default, str.strip, check)


def _parse_percent(text: str) -> int | float:
    word = text.strip()
    if not _CANARY_PERCENT_TEXT.fullmatch(word):
        raise ContractError(f"must be a percentage 0-100 with at most one decimal, got {text!r}")
    return float(word) if "." in word else int(word)


def _check_percent(value: int | float) -> int | float:
    not_bool(value, "a percentage")
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ContractError(f"must be a percentage 0-100, got {value!r}")
    if not 0 <= value <= 100 or abs(value * 10 - round(value * 10)) > 1e-9:
        raise ContractError(f"must be between 0 and 100 with at most one decimal, got {value!r}")
    return value


def _render_percent(value: int | float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.1f}".removesuffix(".0")


# The listening port is plain PORT: a Service named "gateway" injects GATEWAY_PORT=tcp://... into
# every pod of its namespace, which a GATEWAY_-prefixed port would read.
LISTEN_PORT = integer("listen_port", 9696, 1, 65535, env="PORT")
BIND_HOST = name("bind_host", "0.0.0.0")
TF_SERVING_TARGET = Var(
    "tf_serving_target", PREFIX + "TF_SERVING_TARGET", "localhost:8500", str.strip, _check_target
)
MODEL_NAME = name(
    "model_name",
    "clothing-model",
    MODEL_NAME_PATTERN,
    "a TF Serving model name (a letter or digit, then letters, digits, '_', '.', '-'; at most 128)",
)
MODEL_VERSION: Var[int | None] = Var(
    "model_version",
    PREFIX + "MODEL_VERSION",
    None,
    _optional_version,
    _check_version,
    lambda v: "" if v is None else str(v),
)
SIGNATURE_NAME = name("signature_name", "serving_default")
INPUT_NAME = name("input_name", "input_8")
OUTPUT_NAME = name("output_name", "dense_7")
MODEL_DEADLINE_SECONDS = seconds("model_deadline_seconds", 5, 300)
IMAGE_SIZE = integer("image_size", 299, 8, 4096, unit="pixels")
PREPROCESSING = choice(
    "preprocessing", Preprocessing, Preprocessing.XCEPTION, PREPROCESSING_ALIASES
)
RESIZE_FILTER = choice("resize_filter", ResizeFilter, ResizeFilter.NEAREST)
JPEG_DRAFT = boolean("jpeg_draft", True)
LABELS: Var[tuple[str, ...]] = Var(
    "labels", PREFIX + "LABELS", CLOTHING_LABELS, _parse_labels, _check_labels, ",".join
)
SOFTMAX = boolean("softmax", True)
TOP_K = integer("top_k", 3, 1, 10_000)
MAX_DOWNLOAD_BYTES = integer("max_download_bytes", 10 * MiB, 1024, 100 * MiB, unit="bytes")
DOWNLOAD_TIMEOUT_SECONDS = seconds("download_timeout_seconds", 10, 300)
MAX_PIXELS = integer("max_pixels", 25_000_000, 64, 200_000_000)
ALLOWED_INTERNAL: Var[tuple[str, ...]] = Var(
    "allowed_internal", PREFIX + "ALLOWED_INTERNAL", (), _parse_list, _check_allowlist, ",".join
)
MAX_REDIRECTS = integer("max_redirects", 3, 0, 10)
MAX_IN_FLIGHT = integer("max_in_flight", 16, 1, 10_000)
# Memory admission (see gateway/README.md, "Overload"): 0 reads the container's cgroup limit.
MEMORY_LIMIT_BYTES = integer("memory_limit_bytes", 0, 0, 1024**4, unit="bytes", floor=64 * MiB)
MEMORY_BUDGET_PERCENT = integer("memory_budget_percent", 50, 10, 90, unit="percent")
MAX_CONNECTIONS = integer("max_connections", 512, 1, 100_000)
# Slow clients: the request head must arrive within this; the body at least at this rate.
HEADER_TIMEOUT_SECONDS = seconds("header_timeout_seconds", 10, 300)
MIN_UPLOAD_BYTES_PER_SECOND = integer("min_upload_bytes_per_second", 16 * 1024, 0, 100 * MiB)
READY_CACHE_SECONDS = seconds("ready_cache_seconds", 2.0, 3600, zero=True)
READY_TIMEOUT_SECONDS = seconds("ready_timeout_seconds", 1.0, 60)
# 0 = the CPUs this process may use (at most 4); the program sets it from the pod's CPU limit.
WORKER_THREADS = integer("worker_threads", 0, 0, 64)
LOG_LEVEL = choice("log_level", LogLevel, LogLevel.INFO)
ACCESS_LOG = boolean("access_log", False)
# /metrics is served on this port only, which the Service does not expose (issue 10).
METRICS_PORT = integer("metrics_port", 9697, 1, 65535)
# Empty: no authentication. Else the key file (contract_keys), re-read when it changes.
API_KEYS_FILE: Var[str] = Var(
    "api_keys_file", PREFIX + "API_KEYS_FILE", "", str.strip, _check_key_file
)
# Canary (issue 13): CANARY_PERCENT % of requests ask TF Serving for the version labelled
# CANARY_LABEL, the others for STABLE_LABEL (empty: MODEL_VERSION, or the latest). Without a
# canary label, no label is sent at all.
CANARY_LABEL = _version_label("canary_label", "")
CANARY_PERCENT: Var[int | float] = Var(
    "canary_percent", PREFIX + "CANARY_PERCENT", 0, _parse_percent, _check_percent, _render_percent
)
STABLE_LABEL = _version_label("stable_label", "stable")
# On SIGTERM: how long requests in flight may take to finish. 0: DOWNLOAD_TIMEOUT_SECONDS +
# MODEL_DEADLINE_SECONDS, the longest a request can take (see shutdown_seconds()).
SHUTDOWN_SECONDS = seconds("shutdown_seconds", 0, 3600, zero=True)

VARS: tuple[Var[Any], ...] = (
    LISTEN_PORT, BIND_HOST, TF_SERVING_TARGET, MODEL_NAME, MODEL_VERSION, SIGNATURE_NAME,
    INPUT_NAME, OUTPUT_NAME, MODEL_DEADLINE_SECONDS, IMAGE_SIZE, PREPROCESSING, RESIZE_FILTER,
    JPEG_DRAFT, LABELS, SOFTMAX, TOP_K, MAX_DOWNLOAD_BYTES, DOWNLOAD_TIMEOUT_SECONDS, MAX_PIXELS,
    ALLOWED_INTERNAL, MAX_REDIRECTS, MAX_IN_FLIGHT, MEMORY_LIMIT_BYTES, MEMORY_BUDGET_PERCENT,
    MAX_CONNECTIONS, HEADER_TIMEOUT_SECONDS, MIN_UPLOAD_BYTES_PER_SECOND, READY_CACHE_SECONDS,
    READY_TIMEOUT_SECONDS, WORKER_THREADS, LOG_LEVEL, ACCESS_LOG, METRICS_PORT, API_KEYS_FILE,
    CANARY_LABEL, CANARY_PERCENT, STABLE_LABEL, SHUTDOWN_SECONDS,
)  # fmt: skip
BY_FIELD: dict[str, Var[Any]] = {var.field: var for var in VARS}


def check_together(values: Mapping[str, Any]) -> None:
    """Rules across settings; `values` maps field names to checked values (defaults filled in)."""
    labels, top_k = values[LABELS.field], values[TOP_K.field]
    if top_k > len(labels):
        raise ContractError(
            f"must be <= the number of labels ({len(labels)}), got {top_k}", TOP_K.field
        )
    if values[METRICS_PORT.field] == values[LISTEN_PORT.field]:
        raise ContractError(
            f"must differ from {LISTEN_PORT.env} ({values[LISTEN_PORT.field]}): /metrics has "
            "a port of its own",
            METRICS_PORT.field,
        )
    canary, stable = values[CANARY_LABEL.field], values[STABLE_LABEL.field]
    if not canary:
        if values[CANARY_PERCENT.field]:
            raise ContractError(
                f"needs {CANARY_LABEL.env}: which version would get the share?",
                CANARY_PERCENT.field,
            )
        return
    if canary == stable:
        raise ContractError(f"must differ from {STABLE_LABEL.env} ({stable})", CANARY_LABEL.field)
    if stable and values[MODEL_VERSION.field] is not None:
        raise ContractError(
            f"pins a version while {STABLE_LABEL.env} ({stable}) names the stable one: with a "
            f"canary, clear one of them",
            MODEL_VERSION.field,
        )


def shutdown_seconds(values: Mapping[str, Any]) -> float:
    """How long the gateway lets requests in flight finish after SIGTERM (checked values)."""
    explicit = values[SHUTDOWN_SECONDS.field]
    if explicit:
        return float(explicit)
    return float(values[DOWNLOAD_TIMEOUT_SECONDS.field] + values[MODEL_DEADLINE_SECONDS.field])


def with_defaults(values: Mapping[str, Any]) -> dict[str, Any]:
    return {var.field: values.get(var.field, var.default) for var in VARS}


def rendered(values: Mapping[str, Any]) -> dict[str, str]:
    """The environment for the given field values (checked one by one, then together)."""
    check_together(with_defaults({f: BY_FIELD[f].check(v) for f, v in values.items()}))
    return {BY_FIELD[f].env: BY_FIELD[f].to_env(v) for f, v in values.items()}


def env_names() -> Iterable[str]:
    return (var.env for var in VARS)
