from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.settings import (
    CLOTHING_LABELS,
    Preprocessing,
    Settings,
    SettingsError,
    env_name,
    load_settings,
)


def test_defaults_match_the_seed_gateway() -> None:
    s = load_settings()
    assert s.listen_port == 9696
    assert s.tf_serving_target == "localhost:8500"
    assert (s.input_name, s.output_name, s.signature_name) == (
        "input_8",
        "dense_7",
        "serving_default",
    )
    assert s.image_size == 299
    assert s.preprocessing is Preprocessing.XCEPTION
    assert s.resize_filter == "nearest"
    assert s.labels == CLOTHING_LABELS
    assert s.max_download_bytes == 10 * 1024 * 1024
    assert s.max_redirects == 3
    assert s.allowed_internal == ()


def test_reads_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n\nbird\n")
    env = {
        "PORT": "8080",
        "GATEWAY_TF_SERVING_TARGET": "dns:///tf-serving.default.svc.cluster.local:8500",
        "GATEWAY_PREPROCESSING": "ResNet",
        "GATEWAY_LABELS": str(labels),
        "GATEWAY_ALLOWED_INTERNAL": "images.internal, 10.1.0.0/16",
        "GATEWAY_SOFTMAX": "false",
        "GATEWAY_MODEL_VERSION": "",
        "GATEWAY_LOG_LEVEL": "debug",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = load_settings()
    assert s.listen_port == 8080
    assert s.tf_serving_target.startswith("dns:///")
    assert s.preprocessing is Preprocessing.CAFFE
    assert s.labels == ("cat", "dog", "bird")
    assert s.allowed_internal == ("images.internal", "10.1.0.0/16")
    assert "images.internal" in s.address_policy.hosts
    assert s.softmax is False
    assert s.model_version is None
    assert s.log_level == "DEBUG"


def test_comma_separated_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_LABELS", "a, b ,c")
    assert load_settings().labels == ("a", "b", "c")


def test_kubernetes_service_link_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Service named "gateway" injects these into every pod of its namespace.
    monkeypatch.setenv("GATEWAY_PORT", "tcp://10.96.0.12:80")
    monkeypatch.setenv("GATEWAY_SERVICE_HOST", "10.96.0.12")
    monkeypatch.setenv("GATEWAY_SERVICE_PORT", "80")
    assert load_settings().listen_port == 9696


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PORT", "http", "PORT"),
        ("PORT", "70000", "PORT"),
        ("GATEWAY_IMAGE_SIZE", "-1", "GATEWAY_IMAGE_SIZE"),
        ("GATEWAY_PREPROCESSING", "torch", "GATEWAY_PREPROCESSING"),
        ("GATEWAY_TF_SERVING_TARGET", "http://tf-serving:8501", "not a URL"),
        ("GATEWAY_LABELS", "/no/such/labels.txt", "neither a comma-separated list"),
        ("GATEWAY_LABELS", "a,a,b", "unique"),
        ("GATEWAY_ALLOWED_INTERNAL", "10.0.0.0/8, not a host", "allowlist entry"),
        ("GATEWAY_MAX_DOWNLOAD_BYTES", "0", "GATEWAY_MAX_DOWNLOAD_BYTES"),
        ("GATEWAY_DOWNLOAD_TIMEOUT_SECONDS", "0", "GATEWAY_DOWNLOAD_TIMEOUT_SECONDS"),
        ("GATEWAY_MODEL_DEADLINE_SECONDS", "soon", "GATEWAY_MODEL_DEADLINE_SECONDS"),
        ("GATEWAY_MAX_REDIRECTS", "50", "GATEWAY_MAX_REDIRECTS"),
        ("GATEWAY_SOFTMAX", "maybe", "GATEWAY_SOFTMAX"),
        ("GATEWAY_RESIZE_FILTER", "lanczos", "GATEWAY_RESIZE_FILTER"),
        ("GATEWAY_MAX_IN_FLIGHT", "0", "GATEWAY_MAX_IN_FLIGHT"),
        ("GATEWAY_MAX_IN_FLIGHT", "many", "GATEWAY_MAX_IN_FLIGHT"),
    ],
)
def test_invalid_values_name_the_variable(
    variable: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert variable in str(info.value)
    assert message in str(info.value)


def test_every_field_has_a_documented_variable() -> None:
    readme = (Path(__file__).parents[2] / "gateway" / "README.md").read_text()
    for field in (f.name for f in dataclasses.fields(Settings)):
        assert f"`{env_name(field)}`" in readme, f"{env_name(field)} missing from README"


def test_threads_default_to_available_cpus_capped() -> None:
    assert 1 <= load_settings().threads <= 4
    assert load_settings(worker_threads=7).threads == 7


def test_max_in_flight_default_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().max_in_flight == 16
    monkeypatch.setenv("GATEWAY_MAX_IN_FLIGHT", "3")
    assert load_settings().max_in_flight == 3
