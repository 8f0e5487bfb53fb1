"""The gateway's settings are one contract with two readers: the preview and the pod.

`config/gateway.py` validates `tfserving:gateway` at preview; `gateway/settings.py` validates the
rendered ConfigMap at pod start. These tests run both sides against each other: every rendered
gateway ConfigMap is accepted by the gateway's real loader with the values the stack asked for,
and for generated values of every gateway key the preview accepts exactly what the gateway
accepts from its environment.
"""

import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from config.gateway import STACK_KEYS, GatewaySettings
from config.model import ModelSettings
from config.stack import parse
from gateway import contract
from gateway.settings import SettingsError, load_settings
from tests.conftest import PROJECT_ROOT, dev_config, merged, one, write_stack
from tools.render import render_stack


def _config(stack_file):
    return yaml.safe_load(stack_file.read_text())["config"]


GATEWAY_STACKS = [
    p
    for p in sorted(PROJECT_ROOT.glob("Pulumi.*.yaml"))
    if (_config(p).get("tfserving:gateway") or {}).get("enabled") is True
]


def gateway_env(rendered: Any) -> dict[str, str]:
    env = one(rendered, "ConfigMap", "tfserving-gateway-env")["data"]
    assert env, "the gateway's ConfigMap holds its settings"
    return dict(env)


def test_a_committed_stack_runs_the_gateway():
    assert [p.name for p in GATEWAY_STACKS] == ["Pulumi.eks-gpu.yaml", "Pulumi.gateway.yaml"]


@pytest.mark.parametrize("stack_file", GATEWAY_STACKS, ids=lambda p: p.stem)
def test_rendered_configmap_is_accepted_by_the_gateways_loader(stack_file):
    rendered = render_stack(stack_file)
    env = gateway_env(rendered)
    loaded = load_settings(environ=env)
    stack = parse(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in _config(stack_file).items()}
    )
    wanted = stack.gateway
    assert loaded.model_name == stack.model.name
    assert loaded.labels == wanted.label_list
    assert (loaded.image_size, loaded.top_k, loaded.softmax) == (
        wanted.image_size,
        wanted.top_k,
        wanted.softmax,
    )
    assert loaded.preprocessing is wanted.preprocessing
    assert (loaded.input_name, loaded.output_name, loaded.signature_name) == (
        wanted.input_name,
        wanted.output_name,
        wanted.signature_name,
    )
    assert loaded.worker_threads == wanted.resources.cpu_threads
    assert loaded.tf_serving_target.startswith("dns:///") and loaded.tf_serving_target.endswith(
        ":8500"
    )
    # Every variable the program writes is one the gateway reads: no typo goes unnoticed.
    assert set(env) <= set(contract.env_names())


VARIANT = {
    "tfserving:gateway": {
        "enabled": True,
        "labels": ["cat", "dog", "bird"],
        "topK": 3,
        "allowedInternal": ["images.internal", "10.20.0.0/16", "[::1]", "internal_svc"],
        "preprocessing": "ResNet",
        "downloadTimeoutSeconds": 0.5,
        "modelDeadlineSeconds": 300,
        "maxDownloadBytes": 1024,
        "maxInFlight": 10_000,
        "imageSize": 4096,
        "softmax": False,
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "64", "memory": "1Gi"},
        },
    }
}


def test_edge_values_render_into_a_configmap_the_gateway_loads(tmp_path):
    rendered = render_stack(write_stack(tmp_path, merged(dev_config(), VARIANT)))
    loaded = load_settings(environ=gateway_env(rendered))
    assert loaded.labels == ("cat", "dog", "bird")
    assert loaded.allowed_internal == ("images.internal", "10.20.0.0/16", "[::1]", "internal_svc")
    assert loaded.preprocessing is contract.Preprocessing.CAFFE
    assert (loaded.download_timeout_seconds, loaded.model_deadline_seconds) == (0.5, 300)
    assert (loaded.max_download_bytes, loaded.max_in_flight, loaded.image_size) == (
        1024,
        10_000,
        4096,
    )
    assert (loaded.softmax, loaded.worker_threads) == (False, 64)


# --- generated values: the preview accepts exactly what the gateway accepts -----------------


def config_accepts(key: str, value: Any) -> tuple[bool, Any]:
    """(accepted, stored value as the gateway's field) for tfserving:gateway.<key> = value."""
    try:
        gateway = GatewaySettings.model_validate({"enabled": True, key: value})
    except ValidationError:
        return False, None
    return True, contract.with_defaults(gateway.contract_values())[STACK_KEYS[key].field]


def gateway_accepts(var: contract.Var[Any], text: str) -> tuple[bool, Any]:
    """(accepted, value) for the gateway started with <VAR>=text and defaults otherwise."""
    try:
        loaded = load_settings(environ={var.env: text})
    except SettingsError:
        return False, None
    return True, getattr(loaded, var.field)


def as_text(var: contract.Var[Any], value: Any) -> str:
    """What the program would write for `value` (the writer alone, no check); text the user
    writes (names, enumerations) is the same text in the environment."""
    if isinstance(value, str):
        return value
    return var.render(tuple(value) if isinstance(value, list) else value)


HOSTISH = st.one_of(
    st.ip_addresses().map(str),
    st.builds(lambda ip, p: f"{ip}/{p}", st.ip_addresses(v=4).map(str), st.integers(0, 40)),
    st.from_regex(r"\A[a-z0-9_][a-z0-9_.-]{0,20}\Z"),
    st.sampled_from(["10.0.0.300", "[::1]", "internal_svc", "a..b", "127.1", "2130706433", ""]),
    st.text(max_size=12),
)
NAMES = st.one_of(st.text(max_size=20), st.sampled_from(["", " x", "x ", "a\tb", "serving"]))
NUMBERS = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.0, -0.0, 1e-9, 300, 300.0, 300.0000001, 3600, 3600.5]),
)
INTEGERS = st.one_of(
    st.integers(-(2**70), 2**70), st.sampled_from([-1, 0, 1, 7, 8, 1023, 1024, 4096, 4097])
)
STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "signatureName": NAMES,
    "inputName": NAMES,
    "outputName": NAMES,
    "imageSize": INTEGERS,
    "preprocessing": st.one_of(
        st.sampled_from(["xception", "CAFFE", " unit ", "tf", "resnet50", "vgg", "none", "torch"]),
        st.text(max_size=10),
    ),
    "softmax": st.booleans(),
    "topK": INTEGERS,
    "maxDownloadBytes": INTEGERS,
    "downloadTimeoutSeconds": NUMBERS,
    "modelDeadlineSeconds": NUMBERS,
    "maxInFlight": INTEGERS,
    "labels": st.lists(st.one_of(NAMES, st.sampled_from(["a,b", "cat", "dog"])), max_size=6),
    "allowedInternal": st.lists(HOSTISH, max_size=4),
}


def test_every_gateway_key_has_a_generator():
    assert set(STRATEGIES) == set(STACK_KEYS)


@pytest.mark.parametrize("key", sorted(STACK_KEYS))
def test_preview_accepts_exactly_what_the_gateway_accepts(key):
    var = STACK_KEYS[key]

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(STRATEGIES[key])
    def agree(value: Any) -> None:
        preview_ok, stored = config_accepts(key, value)
        gateway_ok, loaded = gateway_accepts(var, as_text(var, value))
        # The gateway must read back what the preview stored, not a different value.
        if preview_ok:
            assert gateway_ok and loaded == stored, (key, value, loaded, stored)
        else:
            assert not (gateway_ok and loaded == _as_field(value)), (key, value, loaded)

    agree()


def _as_field(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@given(st.text(max_size=140))
@settings(max_examples=300, deadline=None)
def test_model_names_agree(name):
    try:
        ModelSettings.model_validate({"name": name, "source": "gcs", "uri": "gs://b/m"})
        preview_ok = True
    except ValidationError as error:
        preview_ok = all(e["loc"] != ("name",) for e in error.errors())
    gateway_ok, loaded = gateway_accepts(contract.MODEL_NAME, name)
    assert preview_ok == (gateway_ok and loaded == name), name


@given(st.integers(1, 300_000))
@settings(max_examples=200, deadline=None)
def test_decode_threads_from_any_accepted_cpu_limit_are_accepted(millicores):
    limit = f"{millicores}m"
    resources = {
        "requests": {"cpu": "1m", "memory": "64Mi"},
        "limits": {"cpu": limit, "memory": "1Gi"},
    }
    try:
        gateway = GatewaySettings.model_validate({"enabled": True, "resources": resources})
    except ValidationError:
        threads = -(-millicores // 1000)
        assert not gateway_accepts(contract.WORKER_THREADS, str(threads))[0] or millicores > 256_000
        return
    threads = gateway.contract_values()[contract.WORKER_THREADS.field]
    assert gateway_accepts(contract.WORKER_THREADS, str(threads)) == (True, threads)
