"""Bad serving settings (models, versions, labels, S3, batching): each exits 2 at render,
naming the key and the fix, and writes nothing."""

from typing import Any

import pytest
import yaml

from config.paths import PROJECT_ROOT
from tests.config.support import GATEWAY, MODEL, SERVER, render_expecting_error
from tests.conftest import dev_config, eks_config, merged

MODELS = "tfserving:models"
TWO_VERSIONS = "tests/fixtures/models/half_plus_two"
S3_MODEL = {
    "name": "clothing",
    "source": "s3",
    "uri": "s3://example-models-bucket/serving/clothing",
    "sizeLimit": "2Gi",
    "path": None,  # merged() drops the base stack's model path
}
BIG_SERVER = {
    "resources": {
        "requests": {"cpu": "1", "memory": "6Gi"},
        "limits": {"cpu": "1", "memory": "6Gi"},
    }
}


def _local(name: str = "half_plus_two", **extra: Any) -> dict[str, Any]:
    return {"name": name, "source": "configmap", "path": TWO_VERSIONS, **extra}


ON_MINIKUBE: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "model-and-models",
        {MODELS: [_local()]},
        ["tfserving:models cannot be combined with tfserving:model: list every model under models"],
    ),
    ("empty-models", {MODEL: None, MODELS: []}, ["tfserving:models must list at least one model"]),
    (
        "duplicate-model-names",
        {MODEL: None, MODELS: [_local(), _local()]},
        ["tfserving:models[1].name must be unique, 'half_plus_two' is already models[0]"],
    ),
    (
        "label-on-a-version-not-loaded",
        {MODEL: _local(labels={"stable": 1})},
        [
            "tfserving:model.labels stable points at version 1, which TF Serving does not load "
            "(loaded: 2)"
        ],
    ),
    (
        "label-on-a-missing-version",
        {MODEL: _local(versionPolicy={"all": True}, labels={"stable": 7})},
        [
            "tfserving:model.labels stable points at version 7",
            "(loaded: 1, 2); change versionPolicy",
        ],
    ),
    (
        "label-name-with-a-dot",
        {MODEL: _local(labels={"v1.0": 1})},
        ["tfserving:model.labels names must be letters, digits, '_' or '-'", "'v1.0'"],
    ),
    (
        "label-version-zero",
        {MODEL: _local(labels={"stable": 0})},
        ["tfserving:model.labels must point at versions >= 1, got stable: 0"],
    ),
    (
        "two-version-policies",
        {MODEL: _local(versionPolicy={"latest": 2, "all": True})},
        [
            "tfserving:model.versionPolicy must be exactly one of {latest: N}, {all: true} or "
            "{specific: [versions]}, got latest, all"
        ],
    ),
    (
        "no-version-policy",
        {MODEL: _local(versionPolicy={})},
        ["tfserving:model.versionPolicy must be exactly one of", "got none"],
    ),
    (
        "latest-zero",
        {MODEL: _local(versionPolicy={"latest": 0})},
        ["tfserving:model.versionPolicy.latest must be between 1 and 100, got 0"],
    ),
    (
        "all-false",
        {MODEL: _local(versionPolicy={"all": False})},
        ["tfserving:model.versionPolicy.all must be true when given"],
    ),
    (
        "specific-repeats",
        {MODEL: _local(versionPolicy={"specific": [1, 1]})},
        ["tfserving:model.versionPolicy.specific must not repeat a version"],
    ),
    (
        "specific-empty",
        {MODEL: _local(versionPolicy={"specific": []})},
        ["tfserving:model.versionPolicy.specific must list version numbers >= 1, got []"],
    ),
    (
        "s3-in-models-on-minikube",
        {MODEL: None, MODELS: [_local(), S3_MODEL]},
        ["tfserving:models[1].source must not be s3 on minikube", "use source configmap"],
    ),
    (
        "size-limit-on-configmap",
        {MODEL: _local(sizeLimit="1Gi")},
        ["tfserving:model.sizeLimit only applies to source s3, not configmap"],
    ),
    (
        "batch-sizes-not-increasing",
        {SERVER: {"batching": {"maxBatchSize": 8, "allowedBatchSizes": [4, 2, 8]}}},
        ["tfserving:server.batching.allowedBatchSizes must be increasing sizes, got [4, 2, 8]"],
    ),
    (
        "batch-sizes-not-ending-at-max",
        {SERVER: {"batching": {"maxBatchSize": 8, "allowedBatchSizes": [2, 4]}}},
        ["tfserving:server.batching.allowedBatchSizes must end with maxBatchSize (8)"],
    ),
    (
        "batch-size-zero",
        {SERVER: {"batching": {"maxBatchSize": 0}}},
        ["tfserving:server.batching.maxBatchSize must be between 1 and 65536, got 0"],
    ),
    (
        "batching-unknown-key",
        {SERVER: {"batching": {"maxBatchsize": 8}}},
        ["tfserving:server.batching.maxBatchsize is not a known setting"],
    ),
]


@pytest.mark.parametrize(
    ("changes", "expected"), [(c, e) for _, c, e in ON_MINIKUBE], ids=[i for i, _, _ in ON_MINIKUBE]
)
def test_bad_serving_config_on_minikube(tmp_path, capsys, changes, expected):
    stderr = render_expecting_error(tmp_path, merged(dev_config(), changes), capsys)
    for text in expected:
        assert text in stderr


ON_EKS: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "s3-without-size-limit",
        {MODEL: {**S3_MODEL, "sizeLimit": None}},
        ["tfserving:model.sizeLimit is required for source s3", "e.g. 2Gi"],
    ),
    (
        "s3-size-limit-too-small",
        {MODEL: {**S3_MODEL, "sizeLimit": "100Ki"}},
        ["tfserving:model.sizeLimit must be between 1Mi and 1Ti, got '100Ki'"],
    ),
    (
        "s3-uri-not-ending-in-the-name",
        {MODEL: {**S3_MODEL, "uri": "s3://example-models-bucket/serving/shoes"}},
        ["tfserving:model.uri must end with the model name '/clothing'"],
    ),
    (
        "s3-bucket-with-capitals",
        {MODEL: {**S3_MODEL, "uri": "s3://Models/serving/clothing"}},
        ["tfserving:model.uri must be s3://<bucket>/<prefix>/<name> with a valid bucket name"],
    ),
    (
        "s3-with-a-local-path",
        {MODEL: {**S3_MODEL, "path": "models/half_plus_two"}},
        ["tfserving:model.path only applies to sources configmap and image, not s3"],
    ),
    (
        "s3-volume-bigger-than-the-memory",
        {MODEL: {**S3_MODEL, "sizeLimit": "8Gi"}},
        [
            "tfserving:server.resources.requests.memory (6Gi) is below what the models need: "
            "16384Mi = the loaded versions (8192Mi) plus a second copy of the largest while it "
            "reloads (8192Mi)"
        ],
    ),
]


@pytest.mark.parametrize(
    ("changes", "expected"), [(c, e) for _, c, e in ON_EKS], ids=[i for i, _, _ in ON_EKS]
)
def test_bad_serving_config_on_eks(tmp_path, capsys, changes, expected):
    config = merged(eks_config(), {SERVER: BIG_SERVER, **changes})
    stderr = render_expecting_error(tmp_path, config, capsys)
    for text in expected:
        assert text in stderr


def test_the_same_s3_model_renders_when_its_memory_fits(tmp_path, render_eks):
    # The control for the rows above: the base they change is valid.
    rendered = render_eks({SERVER: BIG_SERVER, MODEL: S3_MODEL})
    assert any(o["kind"] == "Deployment" for o in rendered.kubernetes_objects)


def test_the_gateway_must_call_a_served_model(tmp_path, capsys):
    config = yaml.safe_load((PROJECT_ROOT / "Pulumi.gateway.yaml").read_text())["config"]
    stderr = render_expecting_error(
        tmp_path, merged(config, {GATEWAY: {"model": "clothing"}}), capsys
    )
    assert (
        "tfserving:gateway.model must be one of the served models (shapes), got 'clothing'"
        in stderr
    )
