"""The contract's own value grammars (labels, allow-list, gRPC target, version, key file path,
version labels, canary share) and its rules across settings: what each accepts, the exact
message of each refusal, and the text written back."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from gateway import contract as c
from gateway.contract import ContractError

# Lists as a stack's JSON gives them; the checks store tuples.
LISTED: Any = ["a", "b"]
LISTED_ENTRY: Any = ["a.internal"]


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(ContractError) as refused:
        call(*args)
    return str(refused.value)


# --- labels --------------------------------------------------------------------------------


def test_a_comma_separated_list_of_labels() -> None:
    assert c.LABELS.from_env(" cat , dog,,bird, ") == ("cat", "dog", "bird")
    assert c.LABELS.from_env("a b,c") == ("a b", "c")
    assert c.LABELS.to_env(("cat", "dog")) == "cat,dog"


def test_a_labels_file_has_one_label_per_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("cat\n\n  dog  \r\n\nbird", encoding="utf-8")
    assert c.read_labels_file(path.read_text()) == ("cat", "dog", "bird")
    assert c.LABELS.from_env(f"  {path}\n") == ("cat", "dog", "bird")
    (tmp_path / "utf8.txt").write_bytes("café\nthé\n".encode())
    assert c.LABELS.from_env(str(tmp_path / "utf8.txt")) == ("café", "thé")


def test_text_that_is_neither_a_list_nor_a_readable_file(tmp_path: Path) -> None:
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\nth\xe9\n".encode("latin-1"))
    for text in ("/no/such/labels.txt", str(tmp_path), "/tmp/a\x00b", str(tmp_path / "latin1.txt")):
        assert refusal(c.LABELS.parse, text) == (
            f"{text!r} is neither a comma-separated list nor a readable labels file"
        )


@pytest.mark.parametrize("label", ["", 5, None])
def test_a_label_is_a_non_empty_string(label: object) -> None:
    assert refusal(c.LABELS.check, ("cat", label)) == (
        f"labels must be non-empty strings, got {label!r}"
    )
    assert refusal(c.check_label, label) == f"labels must be non-empty strings, got {label!r}"


@pytest.mark.parametrize("label", ["a,b", " cat", "cat ", "ca\tt", "cat\x1f", "\x00"])
def test_a_label_has_no_comma_control_character_or_outer_space(label: str) -> None:
    assert refusal(c.check_label, label) == (
        f"labels must not contain commas, control characters or spaces at the ends, got {label!r}"
    )


def test_inner_spaces_and_other_characters_are_fine_in_a_label() -> None:
    assert c.check_label("t shirt") == "t shirt"
    assert c.check_label("t-shirt~\x7f") == "t-shirt~\x7f"


def test_a_list_of_at_least_two_unique_labels() -> None:
    assert c.LABELS.check(LISTED) == ("a", "b")
    assert type(c.LABELS.check(LISTED)) is tuple
    assert refusal(c.LABELS.check, "ab") == "must be a list of labels, got 'ab'"
    assert refusal(c.LABELS.check, None) == "must be a list of labels, got None"
    assert refusal(c.LABELS.check, ("a",)) == "must hold at least two labels, got 1"
    assert refusal(c.LABELS.check, ()) == "must hold at least two labels, got 0"
    assert refusal(c.LABELS.check, ("b", "a", "b", "a", "c")) == (
        "must be unique, 'a' appears more than once"
    )
    assert refusal(c.LABELS.from_env, "x,y,x") == "must be unique, 'x' appears more than once"


# --- allow-list ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [("10.0.0.0/8", ipaddress.ip_network("10.0.0.0/8")),
     ("10.1.2.3/8", ipaddress.ip_network("10.0.0.0/8")),
     ("127.0.0.1", ipaddress.ip_network("127.0.0.1/32")),
     ("[::1]", ipaddress.ip_network("::1/128")),
     ("fd00::/8", ipaddress.ip_network("fd00::/8")),
     ("Images.Internal.", "images.internal"), ("svc.BOX", "svc.box"), ("BOX.", "box"),
     ("svc_1.ns", "svc_1.ns"), ("localhost", "localhost"),
     ("a1.example.com", "a1.example.com")],
)  # fmt: skip
def test_allowlist_entries(entry: str, parsed: object) -> None:
    assert c.allowlist_entry(entry) == parsed


@pytest.mark.parametrize("entry", ["", " 10.0.0.0/8", "host ", 5, None])
def test_an_allowlist_entry_is_a_string_without_spaces(entry: object) -> None:
    assert refusal(c.allowlist_entry, entry) == (
        f"allowlist entry {entry!r} must be a CIDR, an IP or a host name without spaces"
    )


@pytest.mark.parametrize(
    "entry", ["not a host", "host.123", "0x7f.1", "2130706433", "a..b", "-a.b", "a" * 64, "ex!"]
)
def test_an_allowlist_entry_that_is_neither_a_network_nor_a_name(entry: str) -> None:
    assert refusal(c.allowlist_entry, entry) == (
        f"allowlist entry {entry!r} is neither a CIDR/IP nor a host name"
    )


def test_the_allowlist_is_a_list_of_entries() -> None:
    assert c.ALLOWED_INTERNAL.from_env(" a.internal , 10.0.0.0/8 ,") == ("a.internal", "10.0.0.0/8")
    assert c.ALLOWED_INTERNAL.check(LISTED_ENTRY) == ("a.internal",)
    assert type(c.ALLOWED_INTERNAL.check(LISTED_ENTRY)) is tuple
    assert c.ALLOWED_INTERNAL.from_env("") == ()
    assert c.ALLOWED_INTERNAL.to_env(("a.internal", "10.0.0.0/8")) == "a.internal,10.0.0.0/8"
    assert refusal(c.ALLOWED_INTERNAL.check, "10.0.0.0/8") == (
        "must be a list of host names and CIDRs, got '10.0.0.0/8'"
    )
    assert refusal(c.ALLOWED_INTERNAL.check, ("a.internal", "b c")) == (
        "allowlist entry 'b c' is neither a CIDR/IP nor a host name"
    )


# --- TF Serving target, version, key file ---------------------------------------------------


def test_the_grpc_target() -> None:
    assert c.TF_SERVING_TARGET.from_env(" tf-serving:8500\n") == "tf-serving:8500"
    assert c.TF_SERVING_TARGET.check("dns:///tf.svc:8500") == "dns:///tf.svc:8500"
    for value in ("", "   ", " h:1", 5):
        assert refusal(c.TF_SERVING_TARGET.check, value) == (
            f"must be a gRPC target like host:8500, got {value!r}"
        )
    for value in ("http://tf:8501", "grpc://tf:8500", "xdns:///tf:8500"):
        assert refusal(c.TF_SERVING_TARGET.check, value) == (
            "must be host:port or dns:///host:port (TF Serving's gRPC port, usually 8500), "
            f"not a URL, got {value!r}"
        )


def test_the_model_version_is_empty_or_at_least_one() -> None:
    assert c.MODEL_VERSION.from_env("") is None
    assert c.MODEL_VERSION.from_env("  ") is None
    assert c.MODEL_VERSION.from_env(" 3 ") == 3
    assert c.MODEL_VERSION.check(1) == 1
    assert c.MODEL_VERSION.check(None) is None
    assert refusal(c.MODEL_VERSION.from_env, "v3") == "must be a whole number, got 'v3'"
    for value in (0, -1, 1.5, "3"):
        assert refusal(c.MODEL_VERSION.check, value) == (
            f"must be a version number >= 1 or empty (latest), got {value!r}"
        )
    assert refusal(c.MODEL_VERSION.check, True) == (
        "must be a version number, not a boolean (True)"
    )
    assert (c.MODEL_VERSION.to_env(None), c.MODEL_VERSION.to_env(7)) == ("", "7")


def test_the_key_file_is_empty_or_an_absolute_path() -> None:
    assert c.API_KEYS_FILE.from_env("  ") == ""
    assert c.API_KEYS_FILE.from_env(" /etc/keys \n") == "/etc/keys"
    longest = "/" + "k" * 4095
    assert c.API_KEYS_FILE.check(longest) == longest
    assert c.API_KEYS_FILE.check("/a b~") == "/a b~"
    assert refusal(c.API_KEYS_FILE.check, None) == (
        "must be a file path or empty (no API keys), got None"
    )
    for value in ("keys", "/keys ", " /keys", longest + "k"):
        assert refusal(c.API_KEYS_FILE.check, value) == (
            f"must be an absolute path or empty (no API keys), got {value!r}"
        )
    for value in ("/a\x00b", "/a\x1fb", "/a\x7f", "/a\x01"):
        assert refusal(c.API_KEYS_FILE.check, value) == (
            f"must not hold control characters, got {value!r}"
        )


# --- canary --------------------------------------------------------------------------------


def test_version_labels() -> None:
    # Built again here: the contract builds its own when it is imported.
    canary, stable = (
        c._version_label("canary_label", ""),
        c._version_label("stable_label", "stable"),
    )
    for built, contract in ((canary, c.CANARY_LABEL), (stable, c.STABLE_LABEL)):
        assert (built.field, built.env, built.default) == (
            contract.field,
            contract.env,
            contract.default,
        )
    assert (canary.env, canary.default) == ("GATEWAY_CANARY_LABEL", "")
    assert (stable.env, stable.default) == ("GATEWAY_STABLE_LABEL", "stable")
    for var in (canary, c.CANARY_LABEL):
        assert var.from_env("  canary ") == "canary"
        assert var.check("") == ""
        assert var.check("a") == "a"
        assert var.check("S" + "x_-9" * 15 + "xy") == "S" + "x_-9" * 15 + "xy"
        assert var.to_env("Canary-2") == "Canary-2"
        for value in ("1a", "_a", "a b", "a" * 64, "a.b", 5, None):
            assert refusal(var.check, value) == (
                "must be empty or a TF Serving version label (a letter, then letters, digits, "
                f"'_' or '-'; at most 63), got {value!r}"
            )


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), (" 12 ", 12), ("100", 100), ("12.5", 12.5), ("0.1", 0.1), ("100.0", 100.0)],
)
def test_canary_percent_text(text: str, value: float) -> None:
    parsed = c.CANARY_PERCENT.from_env(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text", ["12.25", "", "1e1", "-1", ".5", "5.", "1000.5", "10 %", "1234"])
def test_canary_percent_text_refused(text: str) -> None:
    assert refusal(c.CANARY_PERCENT.parse, text) == (
        f"must be a percentage 0-100 with at most one decimal, got {text!r}"
    )


def test_the_tenth_of_a_percent_rule_allows_float_error_up_to_a_billionth() -> None:
    # In tenths, 1e-10 % is 1e-9 from a whole number: the tolerance itself, still accepted.
    assert c.CANARY_PERCENT.check(1e-10) == 1e-10
    assert c.CANARY_PERCENT.check(0.1 + 0.2) == 0.1 + 0.2  # 3.0000000000000004 tenths
    assert refusal(c.CANARY_PERCENT.check, 2e-10) == (
        "must be between 0 and 100 with at most one decimal, got 2e-10"
    )


def test_canary_percent_values() -> None:
    assert c.CANARY_PERCENT.check(99.9) == 99.9
    assert c.CANARY_PERCENT.check(0.3) == 0.3
    for value in (12.25, -0.1, 100.1, 101, 0.05):
        assert refusal(c.CANARY_PERCENT.check, value) == (
            f"must be between 0 and 100 with at most one decimal, got {value!r}"
        )
    assert refusal(c.CANARY_PERCENT.from_env, "101") == (
        "must be between 0 and 100 with at most one decimal, got 101"
    )
    for odd in (float("inf"), float("nan"), "5", None):
        assert refusal(c.CANARY_PERCENT.check, odd) == (f"must be a percentage 0-100, got {odd!r}")
    assert refusal(c.CANARY_PERCENT.check, False) == "must be a percentage, not a boolean (False)"


@pytest.mark.parametrize(
    ("value", "text"), [(0, "0"), (12, "12"), (12.5, "12.5"), (12.0, "12"), (0.1, "0.1")]
)
def test_canary_percent_written_back(value: float, text: str) -> None:
    assert c.CANARY_PERCENT.to_env(value) == text


# --- rules across settings -----------------------------------------------------------------


def together(**values: Any) -> ContractError | None:
    try:
        c.check_together(c.with_defaults(values))
    except ContractError as error:
        return error
    return None


def test_top_k_at_most_the_number_of_labels() -> None:
    assert together(labels=("a", "b"), top_k=2) is None
    error = together(labels=("a", "b"), top_k=3)
    assert error is not None
    assert (str(error), error.field) == ("must be <= the number of labels (2), got 3", "top_k")


def test_the_metrics_port_differs_from_the_listening_port() -> None:
    assert together(listen_port=9000, metrics_port=9001) is None
    error = together(listen_port=9000, metrics_port=9000)
    assert error is not None
    assert (str(error), error.field) == (
        "must differ from PORT (9000): /metrics has a port of its own",
        "metrics_port",
    )


def test_a_canary_share_needs_a_canary_label() -> None:
    assert together(canary_percent=0) is None
    error = together(canary_percent=0.1)
    assert error is not None
    assert (str(error), error.field) == (
        "needs GATEWAY_CANARY_LABEL: which version would get the share?",
        "canary_percent",
    )
    # Without a canary, a pinned version and the stable label do not conflict.
    assert together(model_version=3) is None


def test_the_canary_label_differs_from_the_stable_one() -> None:
    error = together(canary_label="stable", canary_percent=5)
    assert error is not None
    assert (str(error), error.field) == (
        "must differ from GATEWAY_STABLE_LABEL (stable)",
        "canary_label",
    )
    assert together(canary_label="canary", canary_percent=5) is None


def test_a_pinned_version_conflicts_with_a_stable_label_only_with_a_canary() -> None:
    error = together(canary_label="canary", stable_label="prod", model_version=3)
    assert error is not None
    assert (str(error), error.field) == (
        "pins a version while GATEWAY_STABLE_LABEL (prod) names the stable one: with a canary, "
        "clear one of them",
        "model_version",
    )
    assert together(canary_label="canary", stable_label="", model_version=3) is None
    assert together(canary_label="canary", stable_label="prod") is None


def test_the_drain_bound() -> None:
    assert c.shutdown_seconds(c.with_defaults({"shutdown_seconds": 7})) == 7.0
    assert c.shutdown_seconds(c.with_defaults({})) == 15.0
    drained = c.shutdown_seconds(
        c.with_defaults({"download_timeout_seconds": 2.5, "model_deadline_seconds": 1})
    )
    assert drained == 3.5 and type(drained) is float
    assert type(c.shutdown_seconds(c.with_defaults({"shutdown_seconds": 7}))) is float


def test_defaults_fill_in_what_is_not_given() -> None:
    filled = c.with_defaults({"top_k": 5})
    assert list(filled) == [var.field for var in c.VARS]
    assert filled == {**{var.field: var.default for var in c.VARS}, "top_k": 5}


def test_rendered_environment() -> None:
    assert c.rendered({}) == {}
    assert c.rendered({"top_k": 5, "model_deadline_seconds": 2.5, "softmax": False}) == {
        "GATEWAY_TOP_K": "5",
        "GATEWAY_MODEL_DEADLINE_SECONDS": "2.5",
        "GATEWAY_SOFTMAX": "false",
    }
    assert c.rendered({"listen_port": 8080, "labels": ["a", "b"], "top_k": 2}) == {
        "PORT": "8080",
        "GATEWAY_LABELS": "a,b",
        "GATEWAY_TOP_K": "2",
    }
    assert refusal(c.rendered, {"top_k": 11}) == "must be <= the number of labels (10), got 11"
    assert refusal(c.rendered, {"top_k": 0}) == "must be between 1 and 10000, got 0"
    assert refusal(c.rendered, {"metrics_port": 9696}) == (
        "must differ from PORT (9696): /metrics has a port of its own"
    )


def test_every_variable_name_in_order() -> None:
    names = list(c.env_names())
    assert names == [var.env for var in c.VARS]
    assert names[:3] == ["PORT", "GATEWAY_BIND_HOST", "GATEWAY_TF_SERVING_TARGET"]
    assert len(set(names)) == len(names) == 38
