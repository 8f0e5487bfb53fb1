"""Each kind of setting (whole numbers, seconds, booleans, choices, names) as the gateway and the
Pulumi preview use it: what environment text parses to, which values pass, the exact message of
each refusal (the operator reads it after the variable's name) and the text written back.

The contract builds its variables once, when it is imported. The kinds are built again here, in
each test, with the contract's own arguments (test_the_kinds_built_here_are_the_contracts checks
that they behave as the contract's), so a change to a kind shows in the test that uses it.
"""

from __future__ import annotations

import math
import re
from functools import partial
from typing import Any

import pytest

from gateway import contract as c
from gateway import contract_kinds as kinds
from gateway.contract import ContractError, LogLevel, Preprocessing, ResizeFilter

MiB = 1024 * 1024
LISTEN_PORT = partial(kinds.integer, "listen_port", 9696, 1, 65535, env="PORT")
IMAGE_SIZE = partial(kinds.integer, "image_size", 299, 8, 4096, unit="pixels")
TOP_K = partial(kinds.integer, "top_k", 3, 1, 10_000)
MAX_DOWNLOAD_BYTES = partial(
    kinds.integer, "max_download_bytes", 10 * MiB, 1024, 100 * MiB, unit="bytes"
)
MAX_REDIRECTS = partial(kinds.integer, "max_redirects", 3, 0, 10)
MEMORY_LIMIT_BYTES = partial(
    kinds.integer, "memory_limit_bytes", 0, 0, 1024**4, unit="bytes", floor=64 * MiB
)
MEMORY_BUDGET_PERCENT = partial(kinds.integer, "memory_budget_percent", 50, 10, 90, unit="percent")
MIN_UPLOAD_BYTES_PER_SECOND = partial(
    kinds.integer, "min_upload_bytes_per_second", 16 * 1024, 0, 100 * MiB
)
WORKER_THREADS = partial(kinds.integer, "worker_threads", 0, 0, 64)
MODEL_DEADLINE_SECONDS = partial(kinds.seconds, "model_deadline_seconds", 5, 300)
DOWNLOAD_TIMEOUT_SECONDS = partial(kinds.seconds, "download_timeout_seconds", 10, 300)
HEADER_TIMEOUT_SECONDS = partial(kinds.seconds, "header_timeout_seconds", 10, 300)
READY_CACHE_SECONDS = partial(kinds.seconds, "ready_cache_seconds", 2.0, 3600, zero=True)
READY_TIMEOUT_SECONDS = partial(kinds.seconds, "ready_timeout_seconds", 1.0, 60)
SHUTDOWN_SECONDS = partial(kinds.seconds, "shutdown_seconds", 0, 3600, zero=True)
JPEG_DRAFT = partial(kinds.boolean, "jpeg_draft", True)
SOFTMAX = partial(kinds.boolean, "softmax", True)
ACCESS_LOG = partial(kinds.boolean, "access_log", False)
PREPROCESSING = partial(
    kinds.choice, "preprocessing", Preprocessing, Preprocessing.XCEPTION, c.PREPROCESSING_ALIASES
)
RESIZE_FILTER = partial(kinds.choice, "resize_filter", ResizeFilter, ResizeFilter.NEAREST)
LOG_LEVEL = partial(kinds.choice, "log_level", LogLevel, LogLevel.INFO)
BIND_HOST = partial(kinds.name, "bind_host", "0.0.0.0")
SIGNATURE_NAME = partial(kinds.name, "signature_name", "serving_default")
INPUT_NAME = partial(kinds.name, "input_name", "input_8")
OUTPUT_NAME = partial(kinds.name, "output_name", "dense_7")
MODEL_NAME = partial(
    kinds.name,
    "model_name",
    "clothing-model",
    c.MODEL_NAME_PATTERN,
    "a TF Serving model name (a letter or digit, then letters, digits, '_', '.', '-'; at most 128)",
)
BUILT_HERE = {
    name: value
    for name, value in globals().items()
    if isinstance(value, partial) and name.isupper()
}
# Texts and values that reach every branch of every kind.
PROBES: list[Any] = [
    "", " ", "0", "1", "7", "-1", "8", "4096", "4097", "+5", "2.5", "inf", "nan", "soon", "true",
    "Off", "maybe", "tf", "Caffe", "lanczos", "bilinear", "debug", " x", "a b", "a\x7f", "-m",
    0, 1, 7, 8, 300, 301, 3600, 65535, 65536, 64 * MiB - 1, 64 * MiB, 1024**4 + 1, -0.5, 2.5,
    math.inf, True, False, None, "caffe", "CAFFE", Preprocessing.UNIT, LogLevel.DEBUG, [3],
]  # fmt: skip


def outcome(call: Any, value: Any) -> tuple[str, Any]:
    try:
        return "ok", call(value)
    except ContractError as error:
        return "refused", str(error)
    except (TypeError, ValueError, AttributeError) as error:
        return "error", type(error).__name__


@pytest.mark.parametrize("name", sorted(BUILT_HERE))
def test_the_kinds_built_here_are_the_contracts(name: str) -> None:
    built, contract = BUILT_HERE[name](), getattr(c, name)
    assert (built.field, built.env, built.default) == (
        contract.field,
        contract.env,
        contract.default,
    )
    assert built.env == ("PORT" if name == "LISTEN_PORT" else f"GATEWAY_{name}")
    assert built.field == name.lower()
    for probe in PROBES:
        if isinstance(probe, str):
            assert outcome(built.from_env, probe) == outcome(contract.from_env, probe), probe
        assert outcome(built.check, probe) == outcome(contract.check, probe), probe
        assert outcome(built.to_env, probe) == outcome(contract.to_env, probe), probe


def test_a_pattern_name_says_what_it_must_be() -> None:
    word = kinds.name("word", "a", re.compile("[a-z]+"), "a lower-case word")
    assert word.check("abc") == "abc"
    assert refusal(word.check, "ABC") == "must be a lower-case word, got 'ABC'"


# Plain strings of canonical values, as the Pulumi program passes them.
CANONICAL_CAFFE: Any = "caffe"
CANONICAL_WARNING: Any = "WARNING"
CANONICAL_UNIT: Any = "unit"


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(ContractError) as refused:
        call(*args)
    return str(refused.value)


def test_a_contract_error_names_its_field_only_when_given_one() -> None:
    assert ContractError("bad").field is None
    assert ContractError("bad", "top_k").field == "top_k"
    assert str(ContractError("bad", "top_k")) == "bad"


def test_every_variable_is_the_prefixed_field_except_the_port() -> None:
    assert LISTEN_PORT().env == "PORT"
    others = [var for var in c.VARS if var is not c.LISTEN_PORT]
    assert [var.env for var in others] == ["GATEWAY_" + var.field.upper() for var in others]
    assert TOP_K().env == "GATEWAY_TOP_K" and TOP_K().field == "top_k"


# --- whole numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("7", 7), (" 7 ", 7), ("+7", 7), ("0010", 10), ("4096", 4096), ("\t300\n", 300)],
)
def test_whole_numbers_parse_with_sign_and_spaces(text: str, value: int) -> None:
    assert IMAGE_SIZE().parse(text) == value
    assert c.parse_int(text) == value


def test_a_negative_whole_number_parses() -> None:
    assert c.parse_int("-3") == -3
    assert c.parse_int(" -0 ") == 0


@pytest.mark.parametrize("text", ["", " ", "7.0", "1e3", "seven", "0x10", "7 7", "--7", "+"])
def test_text_that_is_not_a_whole_number(text: str) -> None:
    assert refusal(c.parse_int, text) == f"must be a whole number, got {text!r}"
    assert refusal(IMAGE_SIZE().from_env, text) == f"must be a whole number, got {text!r}"


def test_whole_number_bounds_name_the_unit_when_there_is_one() -> None:
    assert refusal(IMAGE_SIZE().check, 7) == "must be between 8 and 4096 pixels, got 7"
    assert refusal(IMAGE_SIZE().check, 4097) == "must be between 8 and 4096 pixels, got 4097"
    assert refusal(TOP_K().check, 0) == "must be between 1 and 10000, got 0"
    assert refusal(MAX_REDIRECTS().check, 11) == "must be between 0 and 10, got 11"
    assert refusal(MEMORY_BUDGET_PERCENT().check, 91) == (
        "must be between 10 and 90 percent, got 91"
    )
    assert refusal(MAX_DOWNLOAD_BYTES().from_env, "1023") == (
        "must be between 1024 and 104857600 bytes, got 1023"
    )
    assert (IMAGE_SIZE().check(8), IMAGE_SIZE().check(4096)) == (8, 4096)
    assert (TOP_K().check(1), TOP_K().check(10_000)) == (1, 10_000)


def test_an_automatic_zero_or_at_least_the_floor() -> None:
    floor, high = 64 * 1024 * 1024, 1024**4
    message = f"must be 0 (automatic) or between {floor} and {high} bytes, got"
    assert MEMORY_LIMIT_BYTES().check(0) == 0
    assert MEMORY_LIMIT_BYTES().check(floor) == floor
    assert MEMORY_LIMIT_BYTES().check(high) == high
    assert refusal(MEMORY_LIMIT_BYTES().check, 1) == f"{message} 1"
    assert refusal(MEMORY_LIMIT_BYTES().check, floor - 1) == f"{message} {floor - 1}"
    assert refusal(MEMORY_LIMIT_BYTES().check, -1) == (
        f"must be between 0 and {high} bytes, got -1"
    )
    assert refusal(MEMORY_LIMIT_BYTES().check, high + 1) == (
        f"must be between 0 and {high} bytes, got {high + 1}"
    )


def test_without_a_floor_every_value_in_range_passes() -> None:
    assert [WORKER_THREADS().check(n) for n in (0, 1, 2, 63, 64)] == [0, 1, 2, 63, 64]
    assert [MIN_UPLOAD_BYTES_PER_SECOND().check(n) for n in (0, 1)] == [0, 1]


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_not_a_whole_number(value: bool) -> None:
    assert refusal(TOP_K().check, value) == f"must be a whole number, not a boolean ({value!r})"


@pytest.mark.parametrize("value", [3.0, "3", None, [3]])
def test_a_whole_number_must_be_an_int(value: object) -> None:
    assert refusal(TOP_K().check, value) == f"must be a whole number, got {value!r}"


def test_whole_numbers_are_written_back_as_digits_after_the_check() -> None:
    assert TOP_K().to_env(5) == "5"
    assert LISTEN_PORT().to_env(65535) == "65535"
    assert LISTEN_PORT().from_env(" 8080 ") == 8080
    assert refusal(TOP_K().to_env, 0) == "must be between 1 and 10000, got 0"


# --- seconds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("5", 5.0), (" 2.5 ", 2.5), ("1e1", 10.0), ("0.001", 0.001)]
)
def test_seconds_parse_as_numbers(text: str, value: float) -> None:
    parsed = MODEL_DEADLINE_SECONDS().from_env(text)
    assert parsed == value and type(parsed) is float


@pytest.mark.parametrize("text", ["", "soon", "5s", "1,5"])
def test_text_that_is_not_a_number_of_seconds(text: str) -> None:
    assert refusal(MODEL_DEADLINE_SECONDS().parse, text) == (
        f"must be a number of seconds, got {text!r}"
    )


def test_seconds_bounds_say_whether_zero_is_allowed() -> None:
    assert refusal(MODEL_DEADLINE_SECONDS().check, 0) == (
        "must be more than 0 and at most 300 seconds, got 0"
    )
    assert refusal(MODEL_DEADLINE_SECONDS().check, 300.5) == (
        "must be more than 0 and at most 300 seconds, got 300.5"
    )
    assert refusal(READY_CACHE_SECONDS().check, -0.5) == (
        "must be at least 0 and at most 3600 seconds, got -0.5"
    )
    assert refusal(READY_TIMEOUT_SECONDS().check, 61) == (
        "must be more than 0 and at most 60 seconds, got 61"
    )
    assert refusal(SHUTDOWN_SECONDS().check, 3601) == (
        "must be at least 0 and at most 3600 seconds, got 3601"
    )
    assert READY_CACHE_SECONDS().check(0) == 0
    assert SHUTDOWN_SECONDS().check(0.0) == 0.0
    assert MODEL_DEADLINE_SECONDS().check(300) == 300
    assert MODEL_DEADLINE_SECONDS().check(0.001) == 0.001


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, "5", None])
def test_seconds_must_be_a_finite_number(value: object) -> None:
    assert refusal(MODEL_DEADLINE_SECONDS().check, value) == (
        f"must be a finite number of seconds, got {value!r}"
    )


def test_infinite_text_is_refused_after_parsing() -> None:
    assert refusal(DOWNLOAD_TIMEOUT_SECONDS().from_env, "inf") == (
        "must be a finite number of seconds, got inf"
    )


def test_a_boolean_is_not_a_number_of_seconds() -> None:
    assert refusal(HEADER_TIMEOUT_SECONDS().check, True) == (
        "must be a number of seconds, not a boolean (True)"
    )


@pytest.mark.parametrize(
    ("value", "text"), [(5, "5"), (300, "300"), (2.5, "2.5"), (2.0, "2.0"), (0.001, "0.001")]
)
def test_seconds_are_written_back_as_given(value: float, text: str) -> None:
    assert MODEL_DEADLINE_SECONDS().to_env(value) == text
    assert MODEL_DEADLINE_SECONDS().from_env(text) == value


def test_zero_seconds_are_written_back() -> None:
    assert SHUTDOWN_SECONDS().to_env(0) == "0"
    assert READY_CACHE_SECONDS().to_env(0.0) == "0.0"


# --- booleans ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("1", True), ("yes", True), ("on", True), (" TRUE ", True), ("Yes", True),
     ("false", False), ("0", False), ("no", False), ("off", False), (" Off\n", False)],
)  # fmt: skip
def test_boolean_words(text: str, value: bool) -> None:
    assert SOFTMAX().from_env(text) is value


@pytest.mark.parametrize("text", ["", "maybe", "2", "y", "t", "truee"])
def test_other_words_are_not_booleans(text: str) -> None:
    assert refusal(SOFTMAX().parse, text) == f"must be true or false, got {text!r}"


@pytest.mark.parametrize("value", [1, 0, "true", None])
def test_a_boolean_setting_takes_only_booleans(value: object) -> None:
    assert refusal(ACCESS_LOG().check, value) == f"must be true or false, got {value!r}"


def test_booleans_are_written_back_in_lower_case() -> None:
    assert (JPEG_DRAFT().to_env(True), JPEG_DRAFT().to_env(False)) == ("true", "false")
    assert ACCESS_LOG().check(False) is False


# --- choices -------------------------------------------------------------------------------

PREPROCESSING_NAMED = "xception, caffe, unit, none (aliases: tf, resnet, resnet50, vgg)"


@pytest.mark.parametrize(
    ("text", "value"),
    [("xception", Preprocessing.XCEPTION), (" Caffe ", Preprocessing.CAFFE),
     ("UNIT", Preprocessing.UNIT), ("none", Preprocessing.NONE), ("tf", Preprocessing.XCEPTION),
     ("TF", Preprocessing.XCEPTION), ("ResNet", Preprocessing.CAFFE),
     ("resnet50", Preprocessing.CAFFE), (" VGG ", Preprocessing.CAFFE)],
)  # fmt: skip
def test_choices_ignore_case_and_take_aliases(text: str, value: Preprocessing) -> None:
    assert PREPROCESSING().from_env(text) is value


@pytest.mark.parametrize("text", ["torch", "", "keras", "caffe2"])
def test_an_unknown_choice_lists_the_options_and_aliases(text: str) -> None:
    assert refusal(PREPROCESSING().parse, text) == (
        f"must be one of {PREPROCESSING_NAMED}, got {text!r}"
    )


def test_a_choice_without_aliases_lists_only_its_options() -> None:
    assert refusal(RESIZE_FILTER().parse, "lanczos") == (
        "must be one of nearest, bilinear, got 'lanczos'"
    )
    assert refusal(LOG_LEVEL().parse, "trace") == (
        "must be one of DEBUG, INFO, WARNING, ERROR, got 'trace'"
    )
    assert LOG_LEVEL().from_env("debug") is LogLevel.DEBUG
    assert RESIZE_FILTER().from_env("Bilinear") is ResizeFilter.BILINEAR


def test_a_choice_takes_members_and_canonical_strings_only() -> None:
    assert PREPROCESSING().check(Preprocessing.UNIT) is Preprocessing.UNIT
    checked = PREPROCESSING().check(CANONICAL_CAFFE)
    assert checked is Preprocessing.CAFFE
    assert LOG_LEVEL().check(CANONICAL_WARNING) is LogLevel.WARNING
    for value in ("CAFFE", "tf", 3, None, ResizeFilter.NEAREST):
        assert refusal(PREPROCESSING().check, value) == (
            f"must be one of {PREPROCESSING_NAMED}, got {value!r}"
        )


def test_choices_are_written_back_as_their_values() -> None:
    assert PREPROCESSING().to_env(Preprocessing.CAFFE) == "caffe"
    assert PREPROCESSING().to_env(CANONICAL_UNIT) == "unit"
    assert LOG_LEVEL().to_env(LogLevel.ERROR) == "ERROR"


# --- names ---------------------------------------------------------------------------------


def test_names_are_taken_as_written() -> None:
    assert BIND_HOST().from_env("127.0.0.1") == "127.0.0.1"
    assert SIGNATURE_NAME().check("a b~") == "a b~"  # inner spaces and '~' are fine
    assert MODEL_NAME().check("9model_v1.2-x") == "9model_v1.2-x"
    assert MODEL_NAME().check("m" * 128) == "m" * 128
    assert INPUT_NAME().to_env("input_1") == "input_1"


@pytest.mark.parametrize("value", ["", 5, None])
def test_a_name_is_a_non_empty_string(value: object) -> None:
    assert refusal(OUTPUT_NAME().check, value) == f"must be a non-empty string, got {value!r}"


@pytest.mark.parametrize("value", [" x", "x ", "x\n", "a\x00b", "a\x1fb", "a\x7fb", "\tx"])
def test_a_name_has_no_outer_spaces_or_control_characters(value: str) -> None:
    assert refusal(BIND_HOST().from_env, value) == (
        f"must not hold spaces at the ends or control characters, got {value!r}"
    )


@pytest.mark.parametrize("value", ["-model", "_model", "a/b", "m" * 129, "a b"])
def test_a_model_name_follows_tf_servings_grammar(value: str) -> None:
    assert refusal(MODEL_NAME().check, value) == (
        "must be a TF Serving model name (a letter or digit, then letters, digits, '_', '.', "
        f"'-'; at most 128), got {value!r}"
    )
