"""API keys (GATEWAY_API_KEYS_FILE): every route but /healthz and /readyz needs one.

The key file comes from a Kubernetes Secret mounted as a volume. The kubelet updates such a
file in place by swapping a symlink to a new directory, so a rotation shows as a new inode (or
mtime, or size) behind the same path: the store stat()s the path (following the symlinks) every
CHECK_SECONDS, in a thread, and re-reads the file only when that identity changed. A file that
turns unreadable or invalid keeps the keys loaded before, with one WARNING line until a good
file is back. At start-up, a bad or empty file is a configuration error naming the variable.

Keys are compared in constant time: the presented key and every stored key are SHA-256 digests
of the same length, and the presented one is compared with every stored one (no early exit), so
the time taken says nothing about which key, or how much of one, matched. No key is ever logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11

from gateway import contract as c
from gateway.contract import ContractError
from gateway.errors import UnauthorizedError
from gateway.settings import SettingsError

log = logging.getLogger("gateway")

CHECK_SECONDS = 5.0  # how often the key file's identity is looked at
OPEN_PATHS = frozenset({c.HEALTH_PATH, c.READY_PATH})  # probes never need a key
_HOW = f"send {c.AUTHORIZATION_HEADER}: {c.BEARER_SCHEME} <key> or {c.API_KEY_HEADER}: <key>"
Identity = tuple[int, int, int, int, int]  # st_dev, st_ino, st_mtime_ns, st_ctime_ns, st_size


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def _identity(status: os.stat_result) -> Identity:
    return (status.st_dev, status.st_ino, status.st_mtime_ns, status.st_ctime_ns, status.st_size)


def _read(path: str) -> tuple[Identity, tuple[bytes, ...]]:
    """The file's identity and the digests of its keys; ContractError says what is wrong."""
    try:
        with open(path, "rb") as stream:
            identity = _identity(os.fstat(stream.fileno()))  # of the very file read
            data = stream.read(c.API_KEYS_FILE_MAX_BYTES + 1)
    except OSError as error:
        raise ContractError(f"cannot be read: {error.strerror or type(error).__name__}") from None
    if len(data) > c.API_KEYS_FILE_MAX_BYTES:  # before decoding: the cut may split a character
        raise ContractError(f"is larger than {c.API_KEYS_FILE_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ContractError("is not UTF-8 text") from None
    return identity, tuple(digest(key) for key in c.read_api_keys(text))


class KeyStore:
    """The accepted keys (as digests), reloaded when the file changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._identity, self._digests = _read(path)  # ContractError: the caller names the var
        self._bad: Identity | None = None  # a changed file that failed: not read again
        self._failing = False
        self.reloads = 0
        self.failures = 0

    @classmethod
    def open(cls, path: str) -> KeyStore:
        try:
            return cls(path)
        except ContractError as error:
            raise SettingsError([f"  {c.API_KEYS_FILE.env}: ({path}) {error}"]) from None

    @property
    def count(self) -> int:
        return len(self._digests)

    def matches(self, key: str) -> bool:
        presented = digest(key)
        found = False
        for stored in self._digests:  # every key, whatever matched before
            found |= hmac.compare_digest(presented, stored)
        return found

    def refresh(self) -> bool:
        """Reload the keys if the file changed; True when new keys are in use. Blocking I/O:
        run it in a thread."""
        try:
            identity = _identity(os.stat(self.path))
            if identity in (self._identity, self._bad):
                return False
            identity, digests = _read(self.path)
        except OSError as error:  # the path itself is gone or unreadable
            self._fail(f"cannot be read: {error.strerror or type(error).__name__}", None)
            return False
        except ContractError as error:  # a changed file that is bad: not read again
            self._fail(str(error), identity)
            return False
        self._identity, self._digests, self._bad = identity, digests, None
        self.reloads += 1
        self._failing = False
        log.info("API keys reloaded from %s: %d keys", self.path, len(digests))
        return True

    def _fail(self, problem: str, identity: Identity | None) -> None:
        self.failures += 1
        self._bad = identity
        if not self._failing:
            self._failing = True
            log.warning(
                "API key file %s %s: keeping the %d keys loaded before",
                self.path,
                problem,
                len(self._digests),
            )

    async def watch(self, interval: float = CHECK_SECONDS) -> None:
        """Check the file every `interval` seconds until cancelled (app cleanup)."""
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self.refresh)


KEYS = web.AppKey("api_keys", KeyStore)


def presented_key(headers: Any) -> str:
    """The key a request presents; UnauthorizedError (with its reason) when it has none."""
    authorization = headers.getall(c.AUTHORIZATION_HEADER, [])
    api_key = headers.getall(c.API_KEY_HEADER, [])
    if len(authorization) > 1 or len(api_key) > 1:
        raise UnauthorizedError(f"malformed API key: {_HOW}, once", reason="auth_malformed")
    scheme, _, token = (authorization[0] if authorization else "").strip().partition(" ")
    if scheme.lower() == c.BEARER_SCHEME.lower():
        key = token.strip()
    elif api_key:  # another Authorization scheme (a proxy's) does not hide X-API-Key
        key = api_key[0].strip()
    elif authorization:
        raise UnauthorizedError(f"malformed API key: {_HOW}", reason="auth_malformed")
    else:
        raise UnauthorizedError(f"API key required: {_HOW}", reason="auth_missing")
    if not c.API_KEY_MIN_LENGTH <= len(
        key
    ) <= c.API_KEY_MAX_LENGTH or not c.API_KEY_PATTERN.fullmatch(key):
        raise UnauthorizedError(f"malformed API key: {_HOW}", reason="auth_malformed")
    return key


def refusal(request: web.Request) -> UnauthorizedError | None:
    """Why this request may not go on, or None (also None when auth is off)."""
    store = request.app.get(KEYS)
    resource = request.match_info.route.resource  # the route matched, not the raw path
    if store is None or (resource is not None and resource.canonical in OPEN_PATHS):
        return None
    try:
        key = presented_key(request.headers)
    except UnauthorizedError as error:
        return error
    if not store.matches(key):
        return UnauthorizedError("API key not accepted", reason="auth_invalid")
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def require_api_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Inside errors_and_metrics (which answers and counts the 401), before any handler: no
    body is read, no memory reserved and no in-flight slot taken for a request without a key."""
    error = refusal(request)
    if error is not None:
        raise error
    return await handler(request)


async def continue_if_admitted(
    request: web.Request, admitted: Callable[[web.Request], bool] = lambda _: True
) -> None:
    """`Expect: 100-continue` handler: invite the body only from a request that will be
    served, so a refused client is answered before it sends a byte of its body.

    aiohttp runs a route's expect handler before the middlewares (web_app.py, `_handle`); its
    default always answers 100 Continue. Returning None without writing lets the middlewares
    answer the final status instead, which RFC 9110 section 10.1.1 allows.
    """
    if refusal(request) is not None or not admitted(request):
        return
    expect = request.headers.get(hdrs.EXPECT, "")
    if request.version != HttpVersion11:
        return
    if expect.lower() != "100-continue":
        raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect[:100]}")
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # as aiohttp's own handler: the response has not started
