"""Who may call the gateway, as the stack says it: API keys kept encrypted and required on the
internet, canary labels the model has; and how Pulumi's secrets are told from plain text."""

import contextvars
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import config as runtime_config

from config import stack
from config.errors import SettingsError
from config.gateway import API_KEYS_EXAMPLE, ApiKeys, GatewaySettings, api_keys
from config.settings import EksSettings, MinikubeSettings
from config.stack import load, parse, secret_keys
from gateway import contract as c
from tests.config.support import canary_stack
from tests.conftest import PROJECT_ROOT

KEY = "k" * 32
KEYS = json.dumps([KEY, "m" * 40])
SECRET = "tfserving:gatewayApiKeys"
CIPHERTEXT = json.dumps({"secure": "v1:0fa2hTW2Zp9xNVYJ:8DQ0HgAeBoCRKTwe4vO1Dvq2BWJ4"})


def _stack(name: str, **changes: Any) -> dict[str, str]:
    config = yaml.safe_load((PROJECT_ROOT / f"Pulumi.{name}.yaml").read_text())["config"]
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in {**config}.items()}
    return {**raw, **{k: v if isinstance(v, str) else json.dumps(v) for k, v in changes.items()}}


def _internet_facing(**changes: Any) -> dict[str, str]:
    raw = _stack("eks-gpu")
    gateway = json.loads(raw["tfserving:gateway"])
    gateway["service"] = {
        "type": "LoadBalancer",
        "scheme": "internet-facing",
        "allowedSourceRanges": ["203.0.113.0/24"],
    }
    return {**raw, "tfserving:gateway": json.dumps(gateway), **changes}


def problems(raw: dict[str, str], secrets: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        parse(raw, secrets)
    return caught.value.problems


# --- API keys ---------------------------------------------------------------------------------


def test_keys_kept_secret_reach_the_settings_in_order():
    settings = parse(_stack("gateway", **{SECRET: KEYS}), (SECRET,))
    assert isinstance(settings, MinikubeSettings)
    assert settings.gateway_api_keys == ApiKeys((KEY, "m" * 40), encrypted=False)


def test_keys_written_in_plain_text_are_refused_and_not_repeated():
    assert problems(_stack("gateway", **{SECRET: KEYS})) == [
        f"{SECRET} must be stored encrypted, it is plain text in the stack: "
        f"pulumi config rm {SECRET}, then {API_KEYS_EXAMPLE}"
    ]


def test_the_stack_files_ciphertext_is_encrypted_by_definition():
    settings = parse(_stack("gateway", **{SECRET: CIPHERTEXT}))
    assert settings.gateway_api_keys == ApiKeys((), encrypted=True)


@pytest.mark.parametrize("text", ['{"secure": "x", "more": 1}', '{"other": "x"}', "not json"])
def test_only_a_secure_mapping_is_ciphertext(text):
    assert stack._is_ciphertext(text) is False
    assert stack._is_ciphertext('{"secure": "v1:abc"}') is True
    assert problems(_stack("gateway", **{SECRET: text}))[0].startswith(
        f"{SECRET} must be stored encrypted"
    )


def test_keys_without_the_gateway_are_refused():
    assert problems(_stack("dev", **{SECRET: KEYS}), (SECRET,)) == [
        f"{SECRET} only applies while tfserving:gateway.enabled is true"
    ]


def test_an_internet_facing_gateway_needs_keys_and_runs_with_them():
    assert problems(_internet_facing()) == [
        f"{SECRET} is required while the gateway's load balancer is internet-facing "
        f"(gateway.service.scheme): anyone could use the model; {API_KEYS_EXAMPLE}"
    ]
    with_keys = parse(_internet_facing(**{SECRET: KEYS}), (SECRET,))
    assert isinstance(with_keys, EksSettings)
    assert with_keys.gateway_api_keys is not None and len(with_keys.gateway_api_keys.keys) == 2
    # An internal load balancer needs none.
    assert parse(_stack("eks-gpu")).gateway_api_keys is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[", f"must be a JSON list of API keys: {API_KEYS_EXAMPLE}"),
        ('{"keys": []}', f"must be a JSON list of API keys: {API_KEYS_EXAMPLE}"),
        ('"' + KEY + '"', f"must be a JSON list of API keys: {API_KEYS_EXAMPLE}"),
        (
            '["short"]',
            "API key 1 must have 32 to 512 characters, it has 5; a key: openssl rand -base64 32",
        ),
        ("[]", "holds no API key: at least one is needed; a key: openssl rand -base64 32"),
    ],
)
def test_bad_keys_name_the_fix(value, expected):
    with pytest.raises(ValueError) as caught:
        api_keys(value)
    assert str(caught.value) == expected


def test_keys_are_read_from_text_or_as_the_engine_hands_them_over():
    assert api_keys(json.dumps([KEY])) == ApiKeys((KEY,))
    assert api_keys([KEY]) == ApiKeys((KEY,), encrypted=False)
    assert api_keys({"secure": "v1:abc"}) == ApiKeys((), encrypted=True)
    assert api_keys('{"secure": "v1:abc"}') == ApiKeys((), encrypted=True)


# --- canary labels ------------------------------------------------------------------------------


def _canary(canary: dict[str, Any], model: str = "half_plus_two") -> dict[str, str]:
    config = canary_stack(canary, model)
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def test_a_canary_between_two_labels_of_the_model_reaches_the_gateway():
    settings = parse(_canary({"label": "canary", "percent": 12.5}))
    values = settings.gateway.contract_values()
    assert (values["canary_label"], values["canary_percent"], values["stable_label"]) == (
        "canary",
        12.5,
        "stable",
    )
    assert c.CANARY_LABEL.field == "canary_label" and c.STABLE_LABEL.field == "stable_label"


@pytest.mark.parametrize(
    ("canary", "model", "expected"),
    [
        (
            {"label": "beta", "percent": 5},
            "half_plus_two",
            "tfserving:gateway.canary.label 'beta' is not a version label of model half_plus_two "
            "(labels: canary, stable); add it to the model's labels",
        ),
        (
            {"label": "canary", "percent": 5},
            "shapes",
            "tfserving:gateway.canary.label 'canary' is not a version label of model shapes "
            "(labels: none); add it to the model's labels",
        ),
        (
            {"label": "canary", "percent": 5, "stableLabel": "prod"},
            "half_plus_two",
            "tfserving:gateway.canary.stableLabel 'prod' is not a version label of model "
            "half_plus_two "
            "(labels: canary, stable); add it to the model's labels",
        ),
        (
            {"label": "canary", "percent": 100.5},
            "half_plus_two",
            "tfserving:gateway.canary.percent must be between 0 and 100 with at most one "
            "decimal, got 100.5",
        ),
        (
            {"label": "canary", "percent": 12.25},
            "half_plus_two",
            "tfserving:gateway.canary.percent must be between 0 and 100 with at most one "
            "decimal, got 12.25",
        ),
        (
            {"label": "", "percent": 10},
            "half_plus_two",
            "tfserving:gateway.canary.label must name a version label of the model",
        ),
        ({"label": "canary"}, "half_plus_two", "tfserving:gateway.canary.percent is required"),
        (
            {"label": "stable", "percent": 10},
            "half_plus_two",
            "tfserving:gateway.canary.label must differ from GATEWAY_STABLE_LABEL (stable)",
        ),
    ],
    ids=[
        "unknown-label",
        "model-without-labels",
        "unknown-stable-label",
        "above-100",
        "two-decimals",
        "empty-label",
        "no-percent",
        "canary-is-stable",
    ],
)
def test_bad_canaries_are_refused_naming_the_key(canary, model, expected):
    assert problems(_canary(canary, model)) == [expected]


def test_an_empty_stable_label_means_the_latest_version():
    settings = parse(_canary({"label": "canary", "percent": 1, "stableLabel": ""}))
    assert settings.gateway.canary is not None and settings.gateway.canary.stable_label == ""


def test_without_a_canary_the_gateway_gets_no_canary_setting():
    values = GatewaySettings.model_validate({"enabled": True}).contract_values()
    assert not {"canary_label", "canary_percent", "stable_label"} & set(values)
    assert {"worker_threads", "preprocessing", "top_k"} <= set(values)


# --- which keys Pulumi keeps encrypted ----------------------------------------------------------


def _with_stack_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str | None) -> None:
    monkeypatch.setattr(stack, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(pulumi, "get_stack", lambda: "s")
    if text is not None:
        (tmp_path / "Pulumi.s.yaml").write_text(text)


def test_secret_keys_from_the_engine_and_from_the_stack_file(monkeypatch, tmp_path):
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["tfserving:fromEnv"]))
    _with_stack_file(
        monkeypatch,
        tmp_path,
        yaml.safe_dump(
            {
                "config": {
                    SECRET: {"secure": "v1:a"},
                    "bare": {"secure": "v1:b"},
                    "aws:secretKey": {"secure": "v1:c"},
                    "tfserving:model": {"secure": "v1:d", "name": "x"},
                    "tfserving:target": "kind",
                }
            }
        ),
    )

    def read() -> set[str]:
        runtime_config.set_all_config({"tfserving:fromEngine": "x"}, ["tfserving:fromEngine"])
        return secret_keys({"tfserving:fromEngine": "x", "tfserving:plain": "y"})

    assert contextvars.Context().run(read) == {
        "tfserving:fromEnv",
        "tfserving:fromEngine",
        SECRET,
        "tfserving:bare",
        "aws:secretKey",
    }


@pytest.mark.parametrize("text", [None, "", "config:\n", "config: {}\n"])
def test_a_missing_or_empty_stack_file_adds_no_secret(monkeypatch, tmp_path, text):
    monkeypatch.delenv("PULUMI_CONFIG_SECRET_KEYS", raising=False)
    _with_stack_file(monkeypatch, tmp_path, text)
    assert contextvars.Context().run(secret_keys, {"tfserving:a": "b"}) == set()


def test_load_passes_the_secret_keys_on(monkeypatch, tmp_path):
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_SECRET_KEYS", raising=False)
    _with_stack_file(monkeypatch, tmp_path, None)

    def read() -> Any:
        runtime_config.set_all_config(_stack("gateway", **{SECRET: KEYS}), [SECRET])
        return load()

    assert contextvars.Context().run(read).gateway_api_keys.keys == (KEY, "m" * 40)
