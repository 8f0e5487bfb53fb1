"""The API key grammar and the key file's format, as both the gateway and the Pulumi program
check them: both edges of the length and count bounds, the file's size bound, the exact
messages (which name a line and a length, never a key)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway import contract_keys as k
from gateway.contract_kinds import ContractError

ALPHABET = "letters, digits, '-', '.', '_', '~', '+', '/' and trailing '='"


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(ContractError) as refused:
        call(*args)
    return str(refused.value)


def key(n: int, fill: str = "k") -> str:
    return (f"{n:04d}" + fill * 40)[:40]


def test_the_constants_clients_and_the_program_rely_on() -> None:
    assert (k.API_KEY_MIN_LENGTH, k.API_KEY_MAX_LENGTH, k.API_KEYS_MAX) == (32, 512, 100)
    assert k.API_KEYS_FILE_MAX_BYTES == 65536
    assert (k.API_KEYS_MOUNT_DIR, k.API_KEYS_SECRET_KEY) == ("/etc/gateway/api-keys", "keys")
    assert k.WWW_AUTHENTICATE == "Bearer"


@pytest.mark.parametrize(
    "good",
    ["a" * 32, "Z" * 512, "AZaz09-._~+/" * 3, "a" * 30 + "==", "a" * 31 + "=", "/" * 32,
     "0" * 32, "-" * 32, "+~._" * 8],
)  # fmt: skip
def test_keys_of_the_b64token_alphabet_and_length(good: str) -> None:
    assert k.check_api_key(good) == good


@pytest.mark.parametrize("length", [0, 1, 31, 513, 1000])
def test_a_key_of_the_wrong_length(length: int) -> None:
    assert refusal(k.check_api_key, "a" * length) == (
        f"an API key must have 32 to 512 characters, it has {length}"
    )
    assert refusal(k.check_api_key, "a" * length, "API key 7") == (
        f"API key 7 must have 32 to 512 characters, it has {length}"
    )


@pytest.mark.parametrize(
    "bad", ["a" * 31 + "!", "=" + "a" * 31, "a" * 15 + "=" + "a" * 16, "a" * 31 + " ",
            "a" * 31 + "é", "a" * 31 + "\n", "a" * 31 + ":"],
)  # fmt: skip
def test_a_key_outside_the_alphabet(bad: str) -> None:
    assert refusal(k.check_api_key, bad) == (
        f"an API key may only hold {ALPHABET} (RFC 6750 b64token)"
    )


@pytest.mark.parametrize(("value", "kind"), [(None, "NoneType"), (12, "int"), (b"a" * 32, "bytes")])
def test_a_key_is_a_string(value: object, kind: str) -> None:
    assert refusal(k.check_api_key, value) == f"an API key must be a string, got {kind}"


def test_a_list_of_keys() -> None:
    keys = [key(n) for n in range(100)]
    assert k.check_api_keys(keys) == tuple(keys)
    assert k.check_api_keys(iter(keys[:2])) == tuple(keys[:2])
    assert refusal(k.check_api_keys, [*keys, key(100)]) == "holds 101 API keys, at most 100"
    assert refusal(k.check_api_keys, []) == "holds no API key: at least one is needed"
    for value in ("a" * 32, 5, None):
        assert refusal(k.check_api_keys, value) == "must be a list of API keys"
    assert refusal(k.check_api_keys, [key(1), "short"]) == (
        "API key 2 must have 32 to 512 characters, it has 5"
    )
    assert refusal(k.check_api_keys, [key(1), key(2), key(3), key(2), key(1)]) == (
        "API key 4 repeats API key 2"
    )


def test_a_bad_key_is_reported_before_the_count() -> None:
    keys = [key(n) for n in range(101)] + ["bad"]
    assert refusal(k.check_api_keys, keys) == "API key 102 must have 32 to 512 characters, it has 3"


def test_reading_a_key_file() -> None:
    text = f"# rotation\n\n   {key(1)}  \n\t# a comment after a tab\n{key(2)}\r\n\n"
    assert k.read_api_keys(text) == (key(1), key(2))
    assert k.read_api_keys(key(3)) == (key(3),)


def test_the_key_file_names_the_line_of_a_bad_key() -> None:
    text = f"# keys\n{key(1)}\n\n{'s' * 20}\n{key(2)}\n"
    assert refusal(k.read_api_keys, text) == (
        "the key on line 4 must have 32 to 512 characters, it has 20"
    )
    assert refusal(k.read_api_keys, f"{key(1)} # inline\n") == (
        f"the key on line 1 may only hold {ALPHABET} (RFC 6750 b64token)"
    )
    assert refusal(k.read_api_keys, "# nothing\n\n") == "holds no API key: at least one is needed"
    assert refusal(k.read_api_keys, f"{key(1)}\n{key(1)}\n") == "API key 2 repeats API key 1"


def test_the_key_files_size_bound_is_in_utf8_bytes() -> None:
    body = f"{key(1)}\n#"
    at_bound = body + "x" * (65536 - len(body))
    assert len(at_bound.encode()) == 65536
    assert k.read_api_keys(at_bound) == (key(1),)
    assert refusal(k.read_api_keys, at_bound + "x") == "is larger than 65536 bytes"
    # 'é' is two bytes: the same number of characters is one byte too many.
    assert refusal(k.read_api_keys, at_bound[:-1] + "é") == "is larger than 65536 bytes"


def test_a_lone_surrogate_counts_as_its_three_bytes() -> None:
    body = f"{key(1)}\n#\udc80"
    at_bound = body + "x" * (65536 - len(body) - 2)
    assert k.read_api_keys(at_bound) == (key(1),)
    assert refusal(k.read_api_keys, at_bound + "x") == "is larger than 65536 bytes"


def test_rendering_a_key_file() -> None:
    assert k.render_api_keys([key(1), key(2)]) == f"{key(1)}\n{key(2)}\n"
    assert k.render_api_keys((key(3),)) == f"{key(3)}\n"
    assert refusal(k.render_api_keys, []) == "holds no API key: at least one is needed"
    assert refusal(k.render_api_keys, [key(1), key(1)]) == "API key 2 repeats API key 1"


def test_the_largest_file_the_program_can_render_is_read_back() -> None:
    keys = [f"{n:03d}" + "k" * 509 for n in range(100)]  # 100 keys of 512 characters
    assert len("".join(f"{x}\n" for x in keys)) == 51300
    assert k.read_api_keys(k.render_api_keys(keys)) == tuple(keys)
