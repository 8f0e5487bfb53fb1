"""TF Serving's own configuration: its flags and its text-protobuf files.

The files are the text format of TF Serving's protobuf messages (tensorflow_serving/config/
model_server_config.proto, monitoring_config.proto; servables/tensorflow/
session_bundle_config.proto for BatchingParameters); tests parse them with messages of the same
packages and field numbers, so a typo here is a parse error there.
"""

import json
from collections.abc import Sequence

from config.model import ModelSettings, ModelSource, VersionPolicy
from config.workload import BatchingSettings, ServerSettings

MODELS_ROOT = "/models"  # the image's default MODEL_BASE_PATH
CONFIG_DIR = "/etc/tfserving"  # monitoring and batching: replaced (and rolled) when they change
MODEL_CONFIG_DIR = "/etc/tfserving-models"  # the model config: updated in place, polled
MODEL_CONFIG_FILE = "models.config"
METRICS_PATH = "/monitoring/prometheus/metrics"
# How often TF Serving re-reads the model config file: label and version-policy changes apply
# without a restart (the kubelet refreshes a mounted ConfigMap within about a minute too).
MODEL_CONFIG_POLL_SECONDS = 30
# Server-side connection ageing makes round-robin clients re-resolve DNS and find new replicas.
GRPC_MAX_CONNECTION_AGE_MS = 30_000
GRPC_MAX_CONNECTION_AGE_GRACE_MS = 10_000


def _text(value: str) -> str:
    """A protobuf text-format string literal (JSON's escaping is a subset it reads)."""
    return json.dumps(value)


def monitoring_config() -> str:
    return f"prometheus_config {{ enable: true, path: {_text(METRICS_PATH)} }}\n"


def base_path(model: ModelSettings) -> str:
    """Where TF Serving finds <base>/<version>/ for a model."""
    if model.source is ModelSource.GCS:
        assert model.uri is not None
        return model.uri
    return f"{MODELS_ROOT}/{model.name}"  # configmap, image and (copied) s3 models


def _version_policy(policy: VersionPolicy) -> str:
    if policy.latest is not None:
        return f"latest {{ num_versions: {policy.latest} }}"
    if policy.all:
        return "all {}"
    versions = " ".join(f"versions: {v}" for v in policy.specific or [])
    return f"specific {{ {versions} }}"


def model_config(models: Sequence[ModelSettings]) -> str:
    """A ModelServerConfig: one ModelConfig per model, with its version policy and labels."""
    blocks = []
    for model in models:
        lines = [
            f"    name: {_text(model.name)}",
            f"    base_path: {_text(base_path(model))}",
            '    model_platform: "tensorflow"',
        ]
        if model.version_policy is not None:
            lines.append(f"    model_version_policy {{ {_version_policy(model.version_policy)} }}")
        for label, version in sorted((model.labels or {}).items()):
            lines.append(f"    version_labels {{ key: {_text(label)} value: {version} }}")
        blocks.append("  config {\n" + "\n".join(lines) + "\n  }")
    return "model_config_list {\n" + "\n".join(blocks) + "\n}\n"


def batching_parameters(batching: BatchingSettings, server: ServerSettings) -> str:
    """A BatchingParameters message; batch threads default to one per core of the CPU limit."""
    threads = batching.num_batch_threads or server.resources.cpu_threads
    lines = [
        f"max_batch_size {{ value: {batching.max_batch_size} }}",
        f"batch_timeout_micros {{ value: {batching.batch_timeout_micros} }}",
        f"max_enqueued_batches {{ value: {batching.max_enqueued_batches} }}",
        f"num_batch_threads {{ value: {threads} }}",
    ]
    lines += [f"allowed_batch_sizes: {size}" for size in batching.allowed_batch_sizes or []]
    return "\n".join(lines) + "\n"


def uses_model_config(models: Sequence[ModelSettings]) -> bool:
    return len(models) > 1 or any(m.uses_config_file for m in models)


def server_args(models: Sequence[ModelSettings], server: ServerSettings) -> list[str]:
    """Flags appended to the image's entrypoint (which already sets ports, name and base path;
    a model config file, when given, takes the place of the name and base path)."""
    # TF Serving sizes its pools from the node's cores, not the pod's limit: pin them to the limit.
    cores = server.resources.cpu_threads
    flags = [
        f"--tensorflow_intra_op_parallelism={cores}",
        f"--tensorflow_inter_op_parallelism={cores}",
        f"--rest_api_num_threads={4 * cores}",
        f"--grpc_max_threads={4 * cores}",
        "--grpc_channel_arguments="
        f"grpc.max_connection_age_ms={GRPC_MAX_CONNECTION_AGE_MS},"
        f"grpc.max_connection_age_grace_ms={GRPC_MAX_CONNECTION_AGE_GRACE_MS}",
        f"--monitoring_config_file={CONFIG_DIR}/monitoring.config",
    ]
    if uses_model_config(models):
        flags += [
            f"--model_config_file={MODEL_CONFIG_DIR}/{MODEL_CONFIG_FILE}",
            f"--model_config_file_poll_wait_seconds={MODEL_CONFIG_POLL_SECONDS}",
        ]
        if any(m.labels for m in models):
            # Labels are applied before the versions load: at start-up none is available yet,
            # and without this TF Serving refuses to start. It still refuses to *move* a label to
            # a version that is not loaded (server_core.cc, UpdateModelVersionLabelMap), hence
            # the two-step label move in the README.
            flags.append("--allow_version_labels_for_unavailable_models=true")
    if server.batching is not None and server.batching.enabled:
        flags += [
            "--enable_batching=true",
            f"--batching_parameters_file={CONFIG_DIR}/batching.config",
        ]
    if uses_model_config(models) or any(m.source is ModelSource.GCS for m in models):
        # A changed version policy (model config) or a new gs:// version is found by polling.
        flags.append(f"--file_system_poll_wait_seconds={MODEL_CONFIG_POLL_SECONDS}")
    else:
        # One model whose files (ConfigMap, image, copied volume) never change under a running
        # pod: load once, stop polling.
        flags.append("--file_system_poll_wait_seconds=0")
    return flags
