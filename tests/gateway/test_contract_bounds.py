"""Every default exactly, and both edges of every bound, as the gateway's loader applies them:
the value at the bound starts the gateway, one step beyond stops it naming the variable."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gateway import contract as c
from gateway.settings import Settings, SettingsError, load_settings

MiB = 1024 * 1024

DEFAULTS: dict[str, Any] = {
    "listen_port": 9696,
    "bind_host": "0.0.0.0",
    "tf_serving_target": "localhost:8500",
    "model_name": "clothing-model",
    "model_version": None,
    "signature_name": "serving_default",
    "input_name": "input_8",
    "output_name": "dense_7",
    "model_deadline_seconds": 5,
    "image_size": 299,
    "preprocessing": c.Preprocessing.XCEPTION,
    "resize_filter": c.ResizeFilter.NEAREST,
    "jpeg_draft": True,
    "labels": c.CLOTHING_LABELS,
    "softmax": True,
    "top_k": 3,
    "max_download_bytes": 10 * MiB,
    "download_timeout_seconds": 10,
    "max_pixels": 25_000_000,
    "allowed_internal": (),
    "max_redirects": 3,
    "max_in_flight": 16,
    "memory_limit_bytes": 0,
    "memory_budget_percent": 50,
    "max_connections": 512,
    "header_timeout_seconds": 10,
    "min_upload_bytes_per_second": 16 * 1024,
    "ready_cache_seconds": 2.0,
    "ready_timeout_seconds": 1.0,
    "worker_threads": 0,
    "log_level": c.LogLevel.INFO,
    "access_log": False,
    "metrics_port": 9697,
    "api_keys_file": "",
    "canary_label": "",
    "canary_percent": 0,
    "stable_label": "stable",
    "shutdown_seconds": 0,
}


def test_every_setting_has_an_expected_default() -> None:
    assert [f.name for f in dataclasses.fields(Settings)] == list(DEFAULTS)
    assert [var.field for var in c.VARS] == list(DEFAULTS)


@pytest.mark.parametrize("field", list(DEFAULTS))
def test_default_is_exactly(field: str) -> None:
    loaded = getattr(load_settings(environ={}), field)
    expected = DEFAULTS[field]
    assert loaded == expected and type(loaded) is type(expected), (loaded, expected)
    assert c.BY_FIELD[field].default == expected


def test_the_clothing_labels_in_order() -> None:
    assert c.CLOTHING_LABELS == (
        "dress", "hat", "longsleeve", "outwear", "pants",
        "shirt", "shoes", "shorts", "skirt", "t-shirt",
    )  # fmt: skip


# variable, the values at both bounds (accepted), one step beyond each (refused)
BOUNDS = [
    ("PORT", ["1", "65535"], ["0", "65536"]),
    ("GATEWAY_MODEL_DEADLINE_SECONDS", ["0.001", "300"], ["0", "300.001"]),
    ("GATEWAY_IMAGE_SIZE", ["8", "4096"], ["7", "4097"]),
    ("GATEWAY_TOP_K", ["1", "10"], ["0", "11"]),  # at most the 10 default labels
    ("GATEWAY_MAX_DOWNLOAD_BYTES", ["1024", str(100 * MiB)], ["1023", str(100 * MiB + 1)]),
    ("GATEWAY_DOWNLOAD_TIMEOUT_SECONDS", ["0.001", "300"], ["0", "300.001"]),
    ("GATEWAY_MAX_PIXELS", ["64", "200000000"], ["63", "200000001"]),
    ("GATEWAY_MAX_REDIRECTS", ["0", "10"], ["-1", "11"]),
    ("GATEWAY_MAX_IN_FLIGHT", ["1", "10000"], ["0", "10001"]),
    ("GATEWAY_MEMORY_LIMIT_BYTES", ["0", str(64 * MiB), str(1024**4)],
     ["-1", "1", str(64 * MiB - 1), str(1024**4 + 1)]),
    ("GATEWAY_MEMORY_BUDGET_PERCENT", ["10", "90"], ["9", "91"]),
    ("GATEWAY_MAX_CONNECTIONS", ["1", "100000"], ["0", "100001"]),
    ("GATEWAY_HEADER_TIMEOUT_SECONDS", ["0.001", "300"], ["0", "300.001"]),
    ("GATEWAY_MIN_UPLOAD_BYTES_PER_SECOND", ["0", str(100 * MiB)], ["-1", str(100 * MiB + 1)]),
    ("GATEWAY_READY_CACHE_SECONDS", ["0", "3600"], ["-0.001", "3600.001"]),
    ("GATEWAY_READY_TIMEOUT_SECONDS", ["0.001", "60"], ["0", "60.001"]),
    ("GATEWAY_WORKER_THREADS", ["0", "64"], ["-1", "65"]),
    ("GATEWAY_MODEL_VERSION", ["", "1"], ["0", "-1"]),
    ("GATEWAY_METRICS_PORT", ["1", "65535"], ["0", "65536"]),
    # With a canary label (a share needs one), in tenths of a percent.
    ("GATEWAY_CANARY_PERCENT", ["0", "0.1", "99.9", "100"], ["-0.1", "100.1", "12.25"]),
    ("GATEWAY_SHUTDOWN_SECONDS", ["0", "3600"], ["-0.001", "3600.001"]),
]  # fmt: skip
# Set with every case above: what a variable needs from the others to be valid at all.
CONTEXT = {"GATEWAY_CANARY_PERCENT": {"GATEWAY_CANARY_LABEL": "canary"}}
ACCEPTED = [(env, value) for env, ok, _ in BOUNDS for value in ok]
REFUSED = [(env, value) for env, _, bad in BOUNDS for value in bad]


@pytest.mark.parametrize(("env", "value"), ACCEPTED)
def test_the_value_at_a_bound_is_accepted(env: str, value: str) -> None:
    settings = load_settings(environ={env: value, **CONTEXT.get(env, {})})
    field = next(var.field for var in c.VARS if var.env == env)
    assert getattr(settings, field) == (None if value == "" else float(value))


@pytest.mark.parametrize(("env", "value"), REFUSED)
def test_one_step_beyond_a_bound_is_refused(env: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={env: value, **CONTEXT.get(env, {})})
    assert env in str(refused.value)


def test_top_k_reaches_its_own_bound_with_enough_labels() -> None:
    labels = ",".join(f"class{i}" for i in range(10_000))
    assert (
        load_settings(environ={"GATEWAY_LABELS": labels, "GATEWAY_TOP_K": "10000"}).top_k == 10_000
    )
    with pytest.raises(SettingsError, match="GATEWAY_TOP_K"):
        load_settings(environ={"GATEWAY_LABELS": labels + ",one-more", "GATEWAY_TOP_K": "10001"})


def test_every_bounded_number_is_covered() -> None:
    numeric = {
        var.env
        for var in c.VARS
        if isinstance(var.default, int | float) and not isinstance(var.default, bool)
    }
    assert numeric | {c.MODEL_VERSION.env} == {env for env, _, _ in BOUNDS}
