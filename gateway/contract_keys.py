"""API keys for the gateway's contract (`gateway.contract` re-exports all of this): the headers
clients send them in, where the Kubernetes Secret is mounted, and the key file's format.
Standard library only, like the contract.

The key file holds one key per line; blank lines and lines starting with `#` are ignored, so a
rotation can hold the old and the new key (and say so in a comment) for as long as clients
move over. A key is RFC 6750's `b64token` (letters, digits, `-._~+/`, then `=` padding), which
travels unchanged in both headers, between API_KEY_MIN_LENGTH and API_KEY_MAX_LENGTH
characters. Messages about a bad key name its line and length, never its text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gateway.contract_kinds import ContractError

# Clients send `Authorization: Bearer <key>` or `X-API-Key: <key>`.
AUTHORIZATION_HEADER = "Authorization"
BEARER_SCHEME = "Bearer"
API_KEY_HEADER = "X-API-Key"
# The 401's challenge (RFC 6750 section 3).
WWW_AUTHENTICATE = "Bearer"
# Where the Pulumi program mounts the Secret (a directory) and the Secret's data key, which
# becomes the file's name: GATEWAY_API_KEYS_FILE=/etc/gateway/api-keys/keys.
API_KEYS_MOUNT_DIR = "/etc/gateway/api-keys"
API_KEYS_SECRET_KEY = "keys"
API_KEYS_FILE_PATH = f"{API_KEYS_MOUNT_DIR}/{API_KEYS_SECRET_KEY}"
API_KEY_MIN_LENGTH = 32  # 32 random base64 characters are 192 bits
API_KEY_MAX_LENGTH = 512
API_KEYS_MAX = 100  # every request is compared with every key
API_KEYS_FILE_MAX_BYTES = 64 * 1024
API_KEY_PATTERN = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")
_ALPHABET = "letters, digits, '-', '.', '_', '~', '+', '/' and trailing '='"


def check_api_key(key: str, where: str = "an API key") -> str:
    """A key as the gateway accepts it; the message names its length, never its text."""
    if not isinstance(key, str):
        raise ContractError(f"{where} must be a string, got {type(key).__name__}")
    if not API_KEY_MIN_LENGTH <= len(key) <= API_KEY_MAX_LENGTH:
        raise ContractError(
            f"{where} must have {API_KEY_MIN_LENGTH} to {API_KEY_MAX_LENGTH} characters, "
            f"it has {len(key)}"
        )
    if not API_KEY_PATTERN.fullmatch(key):
        raise ContractError(f"{where} may only hold {_ALPHABET} (RFC 6750 b64token)")
    return key


def check_api_keys(keys: Iterable[str]) -> tuple[str, ...]:
    """At least one key, at most API_KEYS_MAX, each valid and none twice."""
    if isinstance(keys, str) or not isinstance(keys, Iterable):
        raise ContractError("must be a list of API keys")
    checked = tuple(keys)
    for number, key in enumerate(checked, 1):
        check_api_key(key, f"API key {number}")
    if not checked:
        raise ContractError("holds no API key: at least one is needed")
    if len(checked) > API_KEYS_MAX:
        raise ContractError(f"holds {len(checked)} API keys, at most {API_KEYS_MAX}")
    seen: dict[str, int] = {}
    for number, key in enumerate(checked, 1):
        if key in seen:
            raise ContractError(f"API key {number} repeats API key {seen[key]}")
        seen[key] = number
    return checked


def read_api_keys(text: str) -> tuple[str, ...]:
    """The keys of a key file's text; ContractError names the line of the first bad one."""
    if len(text.encode("utf-8", "surrogatepass")) > API_KEYS_FILE_MAX_BYTES:
        raise ContractError(f"is larger than {API_KEYS_FILE_MAX_BYTES} bytes")
    keys: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if entry and not entry.startswith("#"):
            keys.append(check_api_key(entry, f"the key on line {number}"))
    return check_api_keys(keys)


def render_api_keys(keys: Iterable[str]) -> str:
    """A key file for these keys (the Secret's content), checked as the gateway reads it."""
    text = "".join(f"{key}\n" for key in check_api_keys(keys))
    read_api_keys(text)  # the size rule
    return text
