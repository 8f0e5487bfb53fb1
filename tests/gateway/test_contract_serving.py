"""The contract's serving settings (issues 10 and 13), as both sides use them: the API key file
format, the metrics port, the canary and the drain bound."""

from __future__ import annotations

from typing import Any

import pytest

from gateway import contract as c
from gateway.contract import ContractError

KEY_A, KEY_B = "A" * 32, "b-._~+/9" * 5 + "=="


def test_the_key_file_format() -> None:
    text = f"# keys, rotated 2026-12\n\n  {KEY_A}  \n# the new one\n{KEY_B}\n"
    assert c.read_api_keys(text) == (KEY_A, KEY_B)
    assert c.render_api_keys([KEY_A, KEY_B]) == f"{KEY_A}\n{KEY_B}\n"
    assert c.read_api_keys(c.render_api_keys([KEY_B])) == (KEY_B,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no API key"),
        ("# only a comment\n\n", "no API key"),
        (f"{KEY_A}\n{'s3cr3t' * 5}\n", "line 2 must have 32 to 512 characters, it has 30"),
        (f"{'x' * 513}\n", "line 1 must have 32 to 512 characters, it has 513"),
        (f"{'k' * 31}é\n", "line 1 may only hold letters"),
        (f"{KEY_A}=x{'y' * 30}\n", "line 1 may only hold"),  # '=' only at the end
        (f"{KEY_A} # inline comment\n", "line 1 may only hold"),
        (f"{KEY_A}\n{KEY_B}\n{KEY_A}\n", "API key 3 repeats API key 1"),
        ("".join(f"{i:040d}\n" for i in range(101)), "101 API keys, at most 100"),
        ("#" * (64 * 1024 + 1), "larger than 65536 bytes"),
    ],
    ids=["empty", "comments", "short", "long", "non-ascii", "inner-equals", "inline-comment",
         "duplicate", "too-many", "too-big"],
)  # fmt: skip
def test_a_bad_key_file_is_refused_without_quoting_a_key(text: str, message: str) -> None:
    with pytest.raises(ContractError, match=message) as refused:
        c.read_api_keys(text)
    assert "s3cr3t" not in str(refused.value) and KEY_A not in str(refused.value)


def test_the_pulumi_side_checks_keys_with_the_same_rules() -> None:
    assert c.check_api_keys([KEY_A]) == (KEY_A,)
    with pytest.raises(ContractError, match="API key 2 must have 32"):
        c.check_api_keys([KEY_A, "short"])
    with pytest.raises(ContractError, match="a list"):
        c.check_api_keys(KEY_A)
    with pytest.raises(ContractError):
        c.render_api_keys([])
    assert c.API_KEYS_FILE_PATH == "/etc/gateway/api-keys/keys"
    assert (c.AUTHORIZATION_HEADER, c.BEARER_SCHEME, c.API_KEY_HEADER) == (
        "Authorization", "Bearer", "X-API-Key"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("var", "good", "bad"),
    [
        (c.API_KEYS_FILE, ["", "/etc/gateway/api-keys/keys"], ["keys", "/a\nb", " /keys"]),
        (c.CANARY_LABEL, ["", "canary", "c" + "a" * 62, "v2_rc-1"], ["1st", "a" * 64, "a b"]),
        (c.STABLE_LABEL, ["", "stable"], ["-stable", "stable!"]),
    ],
)
def test_names_and_paths(var: c.Var[Any], good: list[str], bad: list[str]) -> None:
    for value in good:
        assert var.from_env(value) == value and var.to_env(value) == value
    for value in bad:
        with pytest.raises(ContractError):
            var.check(value)


def test_the_canary_percent_has_one_decimal_both_ways() -> None:
    var = c.CANARY_PERCENT
    assert [var.from_env(t) for t in ("0", "10", "12.5", "100")] == [0, 10, 12.5, 100]
    assert [var.to_env(v) for v in (0, 10, 12.5, 100.0)] == ["0", "10", "12.5", "100"]
    for bad in (True, 12.25, -1, 100.5, float("nan"), "10"):
        with pytest.raises(ContractError):
            var.check(bad)  # type: ignore[arg-type]
    for text in ("1e1", "12.", "+5", "5%"):
        with pytest.raises(ContractError):
            var.from_env(text)


def together(**values: Any) -> None:
    c.check_together(c.with_defaults(values))


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"metrics_port": 9696}, "metrics_port", "must differ from PORT"),
        ({"listen_port": 9697}, "metrics_port", "must differ from PORT"),
        ({"canary_percent": 5}, "canary_percent", "needs GATEWAY_CANARY_LABEL"),
        ({"canary_label": "stable"}, "canary_label", "must differ from GATEWAY_STABLE_LABEL"),
        ({"canary_label": "canary", "model_version": 3}, "model_version", "clear one of them"),
    ],
)
def test_rules_across_settings(values: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ContractError, match=message) as refused:
        together(**values)
    assert refused.value.field == field


def test_what_the_rules_allow() -> None:
    together(canary_label="canary")  # 0 %: the canary is configured, nothing goes there
    together(canary_label="canary", stable_label="", model_version=3)  # stable = version 3
    together(stable_label="", model_version=3)  # no canary: the stable label is unused
    env = c.rendered({"canary_label": "canary", "canary_percent": 12.5, "metrics_port": 9100})
    assert env == {
        "GATEWAY_CANARY_LABEL": "canary",
        "GATEWAY_CANARY_PERCENT": "12.5",
        "GATEWAY_METRICS_PORT": "9100",
    }


def test_the_drain_bound_defaults_to_the_longest_request() -> None:
    assert c.shutdown_seconds(c.with_defaults({})) == 15.0  # 10 s download + 5 s model
    longer = {"download_timeout_seconds": 30, "model_deadline_seconds": 2.5}
    assert c.shutdown_seconds(c.with_defaults(longer)) == 32.5
    assert c.shutdown_seconds(c.with_defaults({"shutdown_seconds": 20})) == 20.0
