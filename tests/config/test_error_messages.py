"""How a bad setting reads: the full key path, what is wrong, and what to write instead."""

import json

import pulumi
import pytest

from config.errors import (
    InvalidSettingError,
    SettingsError,
    _fix,
    _suggestion,
    describe,
    key_path,
    known_keys,
)
from config.stack import parse


def test_settings_error_is_a_run_error_with_one_line_per_problem():
    error = SettingsError(("tfserving:a is required", "tfserving:b is required"))
    assert isinstance(error, pulumi.RunError)
    assert error.problems == ["tfserving:a is required", "tfserving:b is required"]
    assert str(error) == "tfserving:a is required\ntfserving:b is required"


def test_invalid_setting_error_names_a_relative_key_with_list_positions():
    error = InvalidSettingError("must be unique", at="nodeGroups.1.name")
    assert str(error) == "must be unique"
    assert error.at == ("nodeGroups", 1, "name")
    assert InvalidSettingError("is wrong").at == ()
    assert InvalidSettingError("is wrong", at="a..b").at == ("a", "b")


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        ([], "tfserving"),
        (["namespace"], "tfserving:namespace"),
        (["cluster", "nodeGroups", 0, "minSize"], "tfserving:cluster.nodeGroups[0].minSize"),
        (["models", 1], "tfserving:models[1]"),
        ([0, "name"], "tfserving:[0].name"),
    ],
)
def test_key_path_joins_keys_with_dots_and_positions_in_brackets(loc, path):
    assert key_path(loc) == path


@pytest.mark.parametrize(
    ("kind", "value", "hint"),
    [
        ("int_type", "3", " (write 3 without quotes)"),
        ("float_type", "1.5", " (write 1.5 without quotes)"),
        ("bool_type", "true", " (write true without quotes)"),
        ("int_type", "  ", ""),  # nothing to unquote
        ("int_type", 2.5, " (expected a whole number)"),
        ("int_parsing", "two", " (expected a whole number)"),
        ("float_type", None, " (expected a number)"),
        ("bool_type", 2, " (expected true or false)"),
        ("string_type", 5, " (expected text)"),
        ("list_type", "a,b", " (expected a list)"),
        ("dict_type", "x", " (expected a mapping of settings)"),
        ("model_type", 1, " (expected a mapping of settings)"),
        ("greater_than", 0, ""),  # not a type error: no hint
    ],
)
def test_a_wrong_type_says_what_to_write_instead(kind, value, hint):
    assert _fix(kind, value) == hint


def test_a_validator_message_follows_the_key_path_and_its_own_location():
    cause = InvalidSettingError("must be >= minReplicas (2), got 1", at="maxReplicas")
    error = {"loc": ("autoscaling",), "msg": "Value error, ...", "type": "value_error"}
    line = describe({**error, "ctx": {"error": cause}})
    assert line == "tfserving:autoscaling.maxReplicas must be >= minReplicas (2), got 1"


def test_a_plain_value_error_message_replaces_pydantics_prefix():
    error = {
        "loc": ("models", 0, "name"),
        "msg": "Value error, must start with a letter",
        "type": "value_error",
        "ctx": {"error": ValueError("must start with a letter")},
    }
    assert describe(error) == "tfserving:models[0].name must start with a letter"


def test_unknown_and_missing_keys_read_as_such():
    unknown = {"loc": ("nowhere", "typo"), "msg": "Extra inputs", "type": "extra_forbidden"}
    assert describe(unknown) == "tfserving:nowhere.typo is not a known setting (check the spelling)"
    missing = {"loc": ("cluster", "nodeGroups", 0, "name"), "msg": "Field", "type": "missing"}
    assert describe(missing) == "tfserving:cluster.nodeGroups[0].name is required"


def test_a_type_error_shows_the_value_and_the_fix():
    error = {
        "loc": ("autoscaling", "minReplicas"),
        "msg": "Input should be a valid integer",
        "type": "int_type",
        "input": "3",
    }
    assert describe(error) == (
        "tfserving:autoscaling.minReplicas: input should be a valid integer, got '3' "
        "(write 3 without quotes)"
    )
    other = {"loc": ("gpu",), "msg": "Input should be greater than 0", "type": "greater_than"}
    assert describe({**other, "input": -1, "ctx": {"gt": 0}}) == (
        "tfserving:gpu: input should be greater than 0, got -1"
    )


MODEL = {"name": "half_plus_two", "source": "configmap", "path": "models/half_plus_two"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"tfserving:autoscaling": {"maxReplica": 3}},
            ["tfserving:autoscaling.maxReplica is not a known setting; did you mean maxReplicas?"],
        ),
        (
            {"tfserving:autoscaling": {"zzzzzz": 3}},
            [
                "tfserving:autoscaling.zzzzzz is not a known setting (known here: maxReplicas, "
                "minReplicas, scaleDownStabilizationSeconds, targetCpuUtilization)"
            ],
        ),
        # Through a list position, into the list's items.
        (
            {"tfserving:target": "eks", "tfserving:cluster": {"nodeGroups": [{"nmae": "x"}]}},
            [
                "tfserving:cluster.nodeGroups[0].name is required",
                "tfserving:cluster.nodeGroups[0].nmae is not a known setting; did you mean name?",
            ],
        ),
        # Past a list position, into a model below it.
        (
            {"tfserving:models": [{**MODEL, "versionPolicy": {"specifc": [1]}}]},
            [
                "tfserving:models[0].versionPolicy.specifc is not a known setting; "
                "did you mean specific?"
            ],
        ),
        # Through an optional model (`tls: TlsSettings | None`).
        (
            {"tfserving:target": "eks", "tfserving:service": {"tls": {"certArn": "x"}}},
            [
                "tfserving:service.tls.certificateArn is required",
                "tfserving:service.tls.certArn is not a known setting; did you mean "
                "certificateArn?",
            ],
        ),
    ],
    ids=["close-match", "no-match", "list-items", "past-a-list", "optional-model"],
)
def test_a_misspelt_key_gets_the_closest_key_of_its_own_model(raw, expected):
    with pytest.raises(SettingsError) as caught:
        parse({k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()})
    assert caught.value.problems == expected


def test_where_no_model_is_known_the_spelling_is_to_check():
    assert known_keys(["nowhere", "typo"]) == []
    assert _suggestion(["nowhere", "typo"]) == " (check the spelling)"
    assert _suggestion([]) == " (check the spelling)"
    assert _suggestion(["cluster", "nodeGroups", 0]) == " (check the spelling)"
