"""How the gateway loads its settings: from the environment or a given mapping, overrides by
field name, every problem reported at once in a fixed order under one exact heading, and the
values derived from settings (decode threads, drain time, address policy)."""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import pytest

from gateway.contract import LogLevel, Preprocessing
from gateway.netguard import AddressPolicy
from gateway.settings import Settings, SettingsError, env_name, load_settings

HEADING = "invalid gateway configuration:\n"


def problems_of(environ: dict[str, str] | None = None, **overrides: object) -> str:
    with pytest.raises(SettingsError) as refused:
        load_settings(environ=environ or {}, **overrides)
    assert refused.value.problems == str(refused.value).removeprefix(HEADING).split("\n")
    return str(refused.value)


def test_the_message_lists_each_problem_under_one_heading() -> None:
    error = SettingsError(["  A: one", "  B: two"])
    assert str(error) == "invalid gateway configuration:\n  A: one\n  B: two"
    assert error.problems == ["  A: one", "  B: two"]


def test_one_bad_value() -> None:
    assert problems_of({"GATEWAY_IMAGE_SIZE": "7"}) == (
        HEADING + "  GATEWAY_IMAGE_SIZE: must be between 8 and 4096 pixels, got 7"
    )


def test_text_that_does_not_parse() -> None:
    assert problems_of({"GATEWAY_TOP_K": "three"}) == (
        HEADING + "  GATEWAY_TOP_K: must be a whole number, got 'three'"
    )


def test_parse_problems_come_first_then_checks_in_field_order() -> None:
    environ = {
        "GATEWAY_TOP_K": "three",
        "GATEWAY_IMAGE_SIZE": "7",
        "PORT": "0",
        "GATEWAY_SOFTMAX": "maybe",
        "GATEWAY_MAX_REDIRECTS": "11",
    }
    assert problems_of(environ) == HEADING + "\n".join(
        [
            "  GATEWAY_SOFTMAX: must be true or false, got 'maybe'",
            "  GATEWAY_TOP_K: must be a whole number, got 'three'",
            "  PORT: must be between 1 and 65535, got 0",
            "  GATEWAY_IMAGE_SIZE: must be between 8 and 4096 pixels, got 7",
            "  GATEWAY_MAX_REDIRECTS: must be between 0 and 10, got 11",
        ]
    )


def test_rules_across_settings_name_the_variable_they_blame() -> None:
    assert problems_of({"GATEWAY_TOP_K": "11"}) == (
        HEADING + "  GATEWAY_TOP_K: must be <= the number of labels (10), got 11"
    )
    assert problems_of({"GATEWAY_METRICS_PORT": "9696"}) == (
        HEADING + "  GATEWAY_METRICS_PORT: must differ from PORT (9696): /metrics has a port of "
        "its own"
    )
    assert problems_of({"GATEWAY_CANARY_PERCENT": "5"}) == (
        HEADING + "  GATEWAY_CANARY_PERCENT: needs GATEWAY_CANARY_LABEL: which version would get "
        "the share?"
    )
    assert problems_of({"GATEWAY_CANARY_LABEL": "canary", "GATEWAY_MODEL_VERSION": "2"}) == (
        HEADING + "  GATEWAY_MODEL_VERSION: pins a version while GATEWAY_STABLE_LABEL (stable) "
        "names the stable one: with a canary, clear one of them"
    )


def test_rules_across_settings_wait_until_each_value_is_valid() -> None:
    # top_k 11 exceeds the ten labels too, but the bad port is all that is reported.
    assert problems_of({"GATEWAY_TOP_K": "11", "PORT": "0"}) == (
        HEADING + "  PORT: must be between 1 and 65535, got 0"
    )


def test_settings_built_directly_report_the_same_way() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings(image_size=7, top_k=0)
    assert refused.value.problems == [
        "  GATEWAY_IMAGE_SIZE: must be between 8 and 4096 pixels, got 7",
        "  GATEWAY_TOP_K: must be between 1 and 10000, got 0",
    ]
    with pytest.raises(SettingsError) as together:
        Settings(labels=("a", "b"), top_k=3)
    assert together.value.problems == [
        "  GATEWAY_TOP_K: must be <= the number of labels (2), got 3"
    ]


def test_settings_store_checked_values() -> None:
    as_given: dict[str, Any] = {
        "preprocessing": "caffe",
        "labels": ["a", "b"],
        "log_level": "DEBUG",
    }
    settings = Settings(**as_given, top_k=2)
    assert settings.preprocessing is Preprocessing.CAFFE
    assert settings.labels == ("a", "b") and type(settings.labels) is tuple
    assert settings.log_level is LogLevel.DEBUG
    listed: Any = ["x.internal"]
    assert Settings(allowed_internal=listed).allowed_internal == ("x.internal",)


def test_overrides_by_field_as_values_or_text() -> None:
    assert load_settings(environ={}, top_k=5).top_k == 5
    assert load_settings(environ={}, top_k=" 5 ").top_k == 5
    assert load_settings(environ={}, labels="a,b", top_k=2).labels == ("a", "b")
    assert load_settings(environ={}, model_version=None).model_version is None
    assert load_settings(environ={"GATEWAY_TOP_K": "4"}, top_k=5).top_k == 5
    assert load_settings(environ={"GATEWAY_TOP_K": "4"}).top_k == 4
    assert problems_of(top_k="x") == HEADING + "  GATEWAY_TOP_K: must be a whole number, got 'x'"
    assert problems_of(top_k=0) == HEADING + "  GATEWAY_TOP_K: must be between 1 and 10000, got 0"


def test_unknown_overrides_are_a_type_error() -> None:
    with pytest.raises(TypeError) as one:
        load_settings(environ={}, nope=1)
    assert str(one.value) == "unknown settings: nope"
    with pytest.raises(TypeError) as two:
        load_settings(environ={}, zeta=1, alpha=2, top_k=3)
    assert str(two.value) == "unknown settings: alpha, zeta"


def test_the_process_environment_unless_a_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_TOP_K", "4")
    monkeypatch.setenv("PORT", "8080")
    assert (load_settings().top_k, load_settings().listen_port) == (4, 8080)
    assert load_settings(environ={}).top_k == 3
    assert load_settings(environ={"GATEWAY_TOP_K": "2"}).listen_port == 9696
    monkeypatch.setenv("GATEWAY_TOP_K", "zero")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value) == HEADING + "  GATEWAY_TOP_K: must be a whole number, got 'zero'"


def test_variables_outside_the_contract_are_ignored() -> None:
    environ = {"GATEWAY_PORT": "tcp://10.0.0.1:80", "TOP_K": "0", "gateway_top_k": "0"}
    assert load_settings(environ=environ) == Settings()


def test_env_name_of_a_field() -> None:
    assert env_name("listen_port") == "PORT"
    assert env_name("max_in_flight") == "GATEWAY_MAX_IN_FLIGHT"


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 2), (4, 4), (5, 4), (64, 4)])
def test_automatic_threads_are_the_usable_cpus_at_most_four(
    monkeypatch: pytest.MonkeyPatch, cpus: int, threads: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert Settings().threads == threads
    assert Settings(worker_threads=7).threads == 7
    assert Settings(worker_threads=1).threads == 1


def test_at_least_one_thread_even_without_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set())
    assert Settings().threads == 1


def test_the_drain_time() -> None:
    assert Settings().drain_seconds == 15.0
    assert Settings(shutdown_seconds=4).drain_seconds == 4.0
    assert Settings(download_timeout_seconds=1, model_deadline_seconds=2.5).drain_seconds == 3.5


def test_the_address_policy_of_the_allowlist() -> None:
    settings = Settings(allowed_internal=("10.0.0.0/8", "Images.Internal", "[fd00::1]"))
    assert settings.address_policy == AddressPolicy(
        frozenset({"images.internal"}),
        (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::1/128")),
    )
    assert Settings().address_policy == AddressPolicy()
