"""What TF Serving is told (components/tfserving_config.py, model_image.py): its flags, its
text-protobuf files, the model image's Dockerfile; exact text, one case per branch."""

from pathlib import Path
from typing import Any

import pytest

from components import tfserving_config as tfs
from components.model_image import image_models, model_build, model_dockerfile
from config.model import ModelSettings, VersionPolicy
from config.paths import PROJECT_ROOT
from config.workload import BatchingSettings, ServerSettings

TWO_VERSIONS = PROJECT_ROOT / "tests" / "fixtures" / "models" / "half_plus_two"
ONE_VERSION = PROJECT_ROOT / "models" / "half_plus_two"


def model(**data: Any) -> ModelSettings:
    return ModelSettings.model_validate(data)


def server(cpu: str = "1", **data: Any) -> ServerSettings:
    amounts = {"cpu": cpu, "memory": "1Gi"}
    return ServerSettings.model_validate(
        {"resources": {"requests": amounts, "limits": amounts}, **data}
    )


GCS = model(name="g", source="gcs", uri="gs://bucket/models/g")
LOCAL = model(name="m", path=str(ONE_VERSION))
LABELLED = model(
    name="v", path=str(TWO_VERSIONS), versionPolicy={"all": True}, labels={"b": 2, "a": 1}
)
POLICY = model(name="p", path=str(TWO_VERSIONS), versionPolicy={"latest": 2})


def test_monitoring_serves_prometheus_on_the_rest_port():
    assert tfs.monitoring_config() == (
        'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n'
    )


def test_base_paths_are_under_models_except_gcs_which_tf_serving_reads_itself():
    assert tfs.base_path(LOCAL) == "/models/m"
    assert tfs.base_path(GCS) == "gs://bucket/models/g"
    s3 = model(name="s", source="s3", uri="s3://bucket/models/s", sizeLimit="1Gi")
    assert tfs.base_path(s3) == "/models/s"


@pytest.mark.parametrize(
    ("policy", "text"),
    [
        ({"latest": 3}, "latest { num_versions: 3 }"),
        ({"all": True}, "all {}"),
        ({"specific": [4, 2]}, "specific { versions: 4 versions: 2 }"),
    ],
)
def test_version_policies_in_tf_servings_words(policy, text):
    assert tfs._version_policy(VersionPolicy.model_validate(policy)) == text


def test_the_model_config_lists_every_model_with_its_policy_and_labels():
    assert tfs.model_config([LOCAL, LABELLED, POLICY]) == (
        "model_config_list {\n"
        "  config {\n"
        '    name: "m"\n'
        '    base_path: "/models/m"\n'
        '    model_platform: "tensorflow"\n'
        "  }\n"
        "  config {\n"
        '    name: "v"\n'
        '    base_path: "/models/v"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { all {} }\n"
        '    version_labels { key: "a" value: 1 }\n'
        '    version_labels { key: "b" value: 2 }\n'
        "  }\n"
        "  config {\n"
        '    name: "p"\n'
        '    base_path: "/models/p"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { latest { num_versions: 2 } }\n"
        "  }\n"
        "}\n"
    )


def test_batching_parameters_with_threads_from_the_cpu_limit():
    batching = BatchingSettings.model_validate({"maxBatchSize": 16, "allowedBatchSizes": [4, 16]})
    assert tfs.batching_parameters(batching, server("2500m")) == (
        "max_batch_size { value: 16 }\n"
        "batch_timeout_micros { value: 1000 }\n"
        "max_enqueued_batches { value: 100 }\n"
        "num_batch_threads { value: 3 }\n"
        "allowed_batch_sizes: 4\n"
        "allowed_batch_sizes: 16\n"
    )
    own = BatchingSettings.model_validate(
        {"maxBatchSize": 8, "batchTimeoutMicros": 0, "maxEnqueuedBatches": 7, "numBatchThreads": 5}
    )
    assert tfs.batching_parameters(own, server()) == (
        "max_batch_size { value: 8 }\n"
        "batch_timeout_micros { value: 0 }\n"
        "max_enqueued_batches { value: 7 }\n"
        "num_batch_threads { value: 5 }\n"
    )


def test_a_model_config_file_for_several_models_or_a_policy_or_labels():
    assert not tfs.uses_model_config([LOCAL])
    assert not tfs.uses_model_config([GCS])
    assert tfs.uses_model_config([LOCAL, GCS])
    assert tfs.uses_model_config([POLICY])
    assert tfs.uses_model_config([model(name="l", path=str(TWO_VERSIONS), labels={"x": 2})])


THREADS_2 = [
    "--tensorflow_intra_op_parallelism=2",
    "--tensorflow_inter_op_parallelism=2",
    "--rest_api_num_threads=8",
    "--grpc_max_threads=8",
    "--grpc_channel_arguments=grpc.max_connection_age_ms=30000,grpc.max_connection_age_grace_ms=10000",
    "--monitoring_config_file=/etc/tfserving/monitoring.config",
]


def test_one_local_model_loads_once_with_threads_pinned_to_the_limit():
    assert tfs.server_args([LOCAL], server("1500m")) == [
        *THREADS_2,
        "--file_system_poll_wait_seconds=0",
    ]
    one_core = tfs.server_args([LOCAL], server("500m"))
    assert one_core[:4] == [
        "--tensorflow_intra_op_parallelism=1",
        "--tensorflow_inter_op_parallelism=1",
        "--rest_api_num_threads=4",
        "--grpc_max_threads=4",
    ]


def test_a_gcs_model_is_polled_for_new_versions():
    assert tfs.server_args([GCS], server("2")) == [*THREADS_2, "--file_system_poll_wait_seconds=30"]


def test_a_model_config_file_is_polled_and_labels_may_point_ahead():
    config = [
        "--model_config_file=/etc/tfserving-models/models.config",
        "--model_config_file_poll_wait_seconds=30",
    ]
    assert tfs.server_args([POLICY], server("2")) == [
        *THREADS_2, *config, "--file_system_poll_wait_seconds=30",
    ]  # fmt: skip
    assert tfs.server_args([LOCAL, LABELLED], server("2")) == [
        *THREADS_2,
        *config,
        "--allow_version_labels_for_unavailable_models=true",
        "--file_system_poll_wait_seconds=30",
    ]


def test_batching_flags_only_when_batching_is_on():
    on = server("2", batching={"maxBatchSize": 8})
    assert tfs.server_args([LOCAL], on) == [
        *THREADS_2,
        "--enable_batching=true",
        "--batching_parameters_file=/etc/tfserving/batching.config",
        "--file_system_poll_wait_seconds=0",
    ]
    off = server("2", batching={"enabled": False})
    assert tfs.server_args([LOCAL], off) == [*THREADS_2, "--file_system_poll_wait_seconds=0"]


def test_the_model_image_copies_each_image_models_versions(tmp_path: Path):
    second = tmp_path / "second"
    for version in ("3", "5"):
        (second / version).mkdir(parents=True)
        (second / version / "saved_model.pb").write_bytes(b"x")
    first = model(name="first", source="image", path=str(TWO_VERSIONS))
    other = model(name="other", source="image", path=str(second))
    models = [GCS, first, LOCAL, other]
    assert image_models(models) == [first, other]
    gpu = server(gpu=1)
    assert model_dockerfile(models, gpu) == (
        "FROM tensorflow/serving:2.20.0-gpu\n"
        "COPY --chmod=0755 1 /models/first/1\n"
        "COPY --chmod=0755 2 /models/first/2\n"
        "COPY --chmod=0755 --from=model-1 3 /models/other/3\n"
        "COPY --chmod=0755 --from=model-1 5 /models/other/5\n"
    )
    build = model_build(models, gpu)
    assert build.context == TWO_VERSIONS
    assert build.dockerfile_inline == model_dockerfile(models, gpu)
    assert build.dockerfile_path is None
    assert dict(build.named_contexts) == {"model-1": second}
    assert dict(model_build([first], server()).named_contexts) == {}
