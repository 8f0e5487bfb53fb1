"""`tfserving:gateway` as the program reads it: ignored keys, labels, threads, what it hands on."""

from collections.abc import Callable
from typing import Any, cast

import pytest
from pydantic import ValidationError

from config.errors import describe
from config.gateway import GatewaySettings, checked, parsed
from gateway import contract as c
from gateway.contract import ContractError, Preprocessing

ON = {"enabled": True}


def refusals(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        GatewaySettings.model_validate(data)
    return [describe(error) for error in caught.value.errors()]


def contract_error(check: Any, value: Any) -> str:
    with pytest.raises(ContractError) as caught:
        check(value)
    return str(caught.value)


def test_a_key_is_checked_by_the_gateways_own_function():
    assert checked(c.TOP_K).func == c.TOP_K.check
    assert checked(c.IMAGE_SIZE).func == c.IMAGE_SIZE.check


def test_enumerations_are_read_from_text_as_the_gateway_reads_them():
    parse = cast(Callable[[object], object], parsed(c.PREPROCESSING).func)
    assert parse("tf") is Preprocessing.XCEPTION
    assert parse("CAFFE") is Preprocessing.CAFFE
    assert parse(Preprocessing.UNIT) is Preprocessing.UNIT
    assert parse(3) == 3  # not text: left for the check to refuse
    assert GatewaySettings.model_validate({**ON, "preprocessing": "resnet50"}).preprocessing == (
        Preprocessing.CAFFE
    )


def test_a_disabled_gateway_takes_no_settings():
    assert GatewaySettings.model_validate({}).enabled is False
    assert GatewaySettings.model_validate({"enabled": False}).enabled is False
    message = (
        "has no effect while gateway.enabled is false: add enabled: true to deploy the gateway, "
        "or remove the gateway settings"
    )
    assert refusals({"topK": 2}) == [f"tfserving:topK {message}"]
    assert refusals({"softmax": False}) == [f"tfserving:softmax {message}"]
    # the first key in order of the settings' names
    assert refusals({"enabled": False, "topK": 2, "image": "me/gw:1"}) == [
        f"tfserving:image {message}"
    ]


def test_labels_or_a_labels_file_not_both():
    assert refusals({**ON, "labels": ["a", "b"], "topK": 1, "labelsFile": "x.txt"}) == [
        "tfserving:labelsFile cannot be combined with labels: give one of them"
    ]


def test_labels_given_inline_or_by_default():
    assert GatewaySettings.model_validate(ON).label_list == c.LABELS.default
    inline = GatewaySettings.model_validate({**ON, "labels": ["cat", "dog"], "topK": 2})
    assert inline.label_list == ("cat", "dog")


def test_a_labels_file_is_read_from_the_project_one_label_per_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = GatewaySettings.model_validate({**ON, "labelsFile": "models/shapes/labels.txt"})
    assert relative.label_list == ("circle", "square", "triangle", "stripes")
    file = tmp_path / "labels.txt"
    file.write_text("\n  cat\n\ndog  \nbird\n", encoding="utf-8")
    absolute = GatewaySettings.model_validate({**ON, "labelsFile": str(file)})
    assert absolute.label_list == ("cat", "dog", "bird")


def test_a_labels_file_that_cannot_be_used(tmp_path):
    missing = tmp_path / "missing.txt"
    assert refusals({**ON, "labelsFile": str(missing)}) == [
        f"tfserving:labelsFile must be a file with one label per line, {missing} is not"
    ]
    one = tmp_path / "one.txt"
    one.write_text("cat\n", encoding="utf-8")
    why = contract_error(c.LABELS.check, ("cat",))
    assert refusals({**ON, "labelsFile": str(one)}) == [f"tfserving:labelsFile ({one}) {why}"]
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00cat\n")
    assert refusals({**ON, "labelsFile": str(binary)}) == [
        f"tfserving:labelsFile ({binary}) must be UTF-8 text"
    ]
    assert refusals({**ON, "labelsFile": str(tmp_path)}) == [
        f"tfserving:labelsFile must be a file with one label per line, {tmp_path} is not"
    ]


def test_decode_threads_follow_the_cpu_limit_within_the_gateways_cap():
    most = 64  # GATEWAY_WORKER_THREADS' ceiling in the contract
    limits = {"cpu": str(most), "memory": "512Mi"}
    settings = GatewaySettings.model_validate({**ON, "resources": {"limits": limits}})
    assert settings.contract_values()[c.WORKER_THREADS.field] == most
    over = {"cpu": str(most + 1), "memory": "512Mi"}
    why = contract_error(c.WORKER_THREADS.check, most + 1)
    assert refusals({**ON, "resources": {"limits": over}}) == [
        f"tfserving:resources.limits.cpu ({most + 1}) gives one decode thread per core, and the "
        f"gateway's {c.WORKER_THREADS.env} {why}"
    ]


def test_rules_across_keys_name_the_stack_key():
    why = contract_error(c.check_together, c.with_defaults({c.TOP_K.field: 11}))
    assert refusals({**ON, "topK": 11}) == [f"tfserving:topK {why}"]


def test_the_image_tag_labels_the_pods():
    assert (
        GatewaySettings.model_validate({**ON, "image": "registry:5000/gw:1.2.3"}).image_tag
        == "1.2.3"
    )
    assert GatewaySettings.model_validate(ON).image_tag == ""


def test_contract_values_are_what_the_stack_sets_by_the_gateways_names():
    defaults = GatewaySettings.model_validate(ON)
    values = defaults.contract_values()
    assert values == {
        c.SIGNATURE_NAME.field: c.SIGNATURE_NAME.default,
        c.INPUT_NAME.field: c.INPUT_NAME.default,
        c.OUTPUT_NAME.field: c.OUTPUT_NAME.default,
        c.IMAGE_SIZE.field: c.IMAGE_SIZE.default,
        c.PREPROCESSING.field: c.PREPROCESSING.default,
        c.SOFTMAX.field: c.SOFTMAX.default,
        c.TOP_K.field: c.TOP_K.default,
        c.MAX_DOWNLOAD_BYTES.field: c.MAX_DOWNLOAD_BYTES.default,
        c.DOWNLOAD_TIMEOUT_SECONDS.field: c.DOWNLOAD_TIMEOUT_SECONDS.default,
        c.MODEL_DEADLINE_SECONDS.field: c.MODEL_DEADLINE_SECONDS.default,
        c.MAX_IN_FLIGHT.field: c.MAX_IN_FLIGHT.default,
        c.WORKER_THREADS.field: 1,
    }
    configured = GatewaySettings.model_validate(
        {
            **ON,
            "labels": ["cat", "dog", "bird"],
            "topK": 2,
            "allowedInternal": ["10.1.0.0/16", "images.internal"],
            "resources": {"limits": {"cpu": "1500m", "memory": "512Mi"}},
        }
    ).contract_values()
    assert configured[c.LABELS.field] == ("cat", "dog", "bird")
    assert configured[c.ALLOWED_INTERNAL.field] == ("10.1.0.0/16", "images.internal")
    assert configured[c.TOP_K.field] == 2
    assert configured[c.WORKER_THREADS.field] == 2
    from_file = GatewaySettings.model_validate({**ON, "labelsFile": "models/shapes/labels.txt"})
    assert from_file.contract_values()[c.LABELS.field] == (
        "circle",
        "square",
        "triangle",
        "stripes",
    )
