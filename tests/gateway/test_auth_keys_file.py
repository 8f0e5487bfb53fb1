"""API keys, exactly: which header a key is taken from and every 401 message with its reason; the
key file as the store reads it (both edges of its size bound, each start-up message), reloads
and failures as counted and logged, and the 401 bodies a client reads."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict

from gateway import auth
from gateway.errors import UnauthorizedError
from gateway.settings import SettingsError
from tests.gateway.support import RED_PNG, RunningGateway

HOW = "send Authorization: Bearer <key> or X-API-Key: <key>"
KEY_A, KEY_B, KEY_C = "a" * 32, "B" * 40 + "==", "c-._~+/9" * 8
Factory = Callable[..., Awaitable[RunningGateway]]


def refused(*headers: tuple[str, str]) -> tuple[str, str]:
    with pytest.raises(UnauthorizedError) as error:
        auth.presented_key(CIMultiDict(headers))
    return error.value.message, error.value.reason


@pytest.mark.parametrize(
    ("headers", "key"),
    [([("Authorization", f"Bearer {KEY_A}")], KEY_A),
     ([("authorization", f"  bearer   {KEY_A}  ")], KEY_A),
     ([("Authorization", f"BEARER {KEY_C}")], KEY_C),
     ([("X-API-Key", f"  {KEY_B} ")], KEY_B),
     ([("Authorization", f"Bearer {KEY_A}"), ("X-API-Key", KEY_B)], KEY_A),
     ([("Authorization", "Basic dXNlcjpwdw=="), ("X-API-Key", KEY_B)], KEY_B),
     ([("X-API-Key", "k" * 512)], "k" * 512)],
)  # fmt: skip
def test_the_key_a_request_presents(headers: list[tuple[str, str]], key: str) -> None:
    assert auth.presented_key(CIMultiDict(headers)) == key


def test_no_key_at_all() -> None:
    assert refused() == (f"API key required: {HOW}", "auth_missing")


@pytest.mark.parametrize(
    "headers",
    [[("Authorization", f"Bearer {KEY_A}"), ("Authorization", f"Bearer {KEY_A}")],
     [("X-API-Key", KEY_A), ("X-API-Key", KEY_B)]],
)  # fmt: skip
def test_a_header_given_twice(headers: list[tuple[str, str]]) -> None:
    assert refused(*headers) == (f"malformed API key: {HOW}, once", "auth_malformed")


@pytest.mark.parametrize(
    "headers",
    [[("Authorization", "Basic dXNlcjpwdw==")], [("Authorization", KEY_A)],
     [("Authorization", "Bearer")], [("Authorization", "Bearer ")],
     [("Authorization", "Bearer " + "a" * 31)], [("X-API-Key", "a" * 31)],
     [("X-API-Key", "a" * 513)], [("Authorization", "Bearer " + "a" * 31 + "!")],
     [("X-API-Key", "")], [("Authorization", f"Bearer {KEY_A} extra")]],
)  # fmt: skip
def test_a_malformed_key(headers: list[tuple[str, str]]) -> None:
    assert refused(*headers) == (f"malformed API key: {HOW}", "auth_malformed")


# --- the key file --------------------------------------------------------------------------


def write(path: Path, text: str | bytes) -> str:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def test_the_store_matches_only_its_keys(tmp_path: Path) -> None:
    store = auth.KeyStore(write(tmp_path / "keys", f"# two keys\n{KEY_A}\n\n{KEY_B}\n"))
    assert (store.path, store.count, store.reloads, store.failures) == (
        str(tmp_path / "keys"),
        2,
        0,
        0,
    )
    assert (store.matches(KEY_A), store.matches(KEY_B), store.matches(KEY_C)) == (True, True, False)
    assert not store.matches(KEY_A[:-1]) and not store.matches(KEY_A + "a")
    assert auth.digest(KEY_A) != auth.digest(KEY_B) and len(auth.digest(KEY_A)) == 32


def test_the_key_files_size_bound(tmp_path: Path) -> None:
    head = f"{KEY_A}\n#"
    at_bound = head + "x" * (65536 - len(head) - len(KEY_B) - 1) + f"\n{KEY_B}"
    assert len(at_bound) == 65536
    store = auth.KeyStore(write(tmp_path / "keys", at_bound))
    assert (store.count, store.matches(KEY_A), store.matches(KEY_B)) == (2, True, True)
    for name, text in (("big", at_bound + "\n"), ("cut", at_bound + "é")):
        # One byte too many; 'é' is two bytes, and the first of them is byte 65536.
        with pytest.raises(SettingsError) as big:
            auth.KeyStore.open(write(tmp_path / name, text))
        assert str(big.value) == (
            "invalid gateway configuration:\n"
            f"  GATEWAY_API_KEYS_FILE: ({tmp_path / name}) is larger than 65536 bytes"
        )


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "cannot be read: No such file or directory"), (b"", "holds no API key: at least "
     "one is needed"), (b"\xff" * 40, "is not UTF-8 text"),
     (f"{KEY_A}\ntiny\n".encode(), "the key on line 2 must have 32 to 512 characters, it has 4"),
     (f"{KEY_A}\n{KEY_A}\n".encode(), "API key 2 repeats API key 1")],
)  # fmt: skip
def test_a_bad_file_at_start_up(tmp_path: Path, content: bytes | None, problem: str) -> None:
    path = tmp_path / "keys"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SettingsError) as bad:
        auth.KeyStore.open(str(path))
    assert bad.value.problems == [f"  GATEWAY_API_KEYS_FILE: ({path}) {problem}"]


def test_a_directory_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as bad:
        auth.KeyStore.open(str(tmp_path))
    assert bad.value.problems == [
        f"  GATEWAY_API_KEYS_FILE: ({tmp_path}) cannot be read: Is a directory"
    ]


def replace(path: Path, text: str) -> None:
    """A new file behind the same path (a new inode), as the kubelet's swap."""
    new = path.with_name(path.name + ".new")
    new.write_text(text)
    os.replace(new, path)


def test_each_changed_file_is_reloaded_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    path = tmp_path / "keys"
    store = auth.KeyStore(write(path, f"{KEY_A}\n"))
    assert store.refresh() is False
    replace(path, f"{KEY_B}\n{KEY_C}\n")
    assert store.refresh() is True
    assert store.refresh() is False
    assert (store.count, store.reloads, store.failures) == (2, 1, 0)
    assert not store.matches(KEY_A) and store.matches(KEY_C)
    replace(path, f"{KEY_A}\n")
    assert store.refresh() is True
    assert (store.count, store.reloads, store.failures) == (1, 2, 0)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", f"API keys reloaded from {path}: 2 keys"),
        ("INFO", f"API keys reloaded from {path}: 1 keys"),
    ]


def test_a_bad_file_keeps_the_keys_and_warns_once_until_a_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    path = tmp_path / "keys"
    store = auth.KeyStore(write(path, f"{KEY_A}\n{KEY_B}\n"))
    replace(path, "tiny\n")
    assert store.refresh() is False
    assert store.refresh() is False  # the same bad file is not read again
    assert (store.failures, store.count, store.matches(KEY_A)) == (1, 2, True)
    replace(path, "")
    assert store.refresh() is False
    path.unlink()
    assert store.refresh() is False
    assert store.refresh() is False  # a missing path is looked at each time
    assert (store.failures, store.reloads) == (4, 0)
    replace(path, f"{KEY_C}\n")
    assert store.refresh() is True
    replace(path, "\xff")
    assert store.refresh() is False
    assert (store.failures, store.reloads, store.count) == (5, 1, 1)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"API key file {path} the key on line 1 must have 32 to 512 characters, it "
                    "has 4: keeping the 2 keys loaded before"),
        ("INFO", f"API keys reloaded from {path}: 1 keys"),
        ("WARNING", f"API key file {path} the key on line 1 must have 32 to 512 characters, it "
                    "has 1: keeping the 1 keys loaded before"),
    ]  # fmt: skip


def test_a_path_that_disappears_is_reported_as_unreadable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys"
    store = auth.KeyStore(write(path, f"{KEY_A}\n"))
    path.unlink()
    assert store.refresh() is False
    assert [r.getMessage() for r in caplog.records] == [
        f"API key file {path} cannot be read: No such file or directory: keeping the 1 keys "
        "loaded before"
    ]
    write(path, f"{KEY_A}\n")
    assert store.refresh() is True  # back: read again, even with the same keys


@pytest.mark.asyncio
async def test_the_watch_refreshes_every_interval(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    store = auth.KeyStore(write(path, f"{KEY_A}\n"))
    watcher = asyncio.create_task(store.watch(0.01))
    replace(path, f"{KEY_B}\n")
    try:
        async with asyncio.timeout(10):
            while store.reloads == 0:
                await asyncio.sleep(0.01)
    finally:
        watcher.cancel()
    assert store.matches(KEY_B) and auth.CHECK_SECONDS == 5.0


# --- the 401 a client reads ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_401_bodies(gateway_factory: Factory, tmp_path: Path) -> None:
    gw = await gateway_factory(api_keys_file=write(tmp_path / "keys", f"{KEY_A}\n"))
    cases = [
        ({}, f"API key required: {HOW}"),
        ({"X-API-Key": "short"}, f"malformed API key: {HOW}"),
        ({"X-API-Key": KEY_B}, "API key not accepted"),
    ]
    async with aiohttp.ClientSession() as http:
        for headers, message in cases:
            sent = {"Content-Type": "image/png", **headers}
            async with http.post(gw.url("/predict"), data=RED_PNG, headers=sent) as r:
                assert (r.status, await r.json()) == (401, {"error": message})
        async with http.get(gw.url("/readyz")) as r:
            assert r.status == 200
        good = {"Content-Type": "image/png", "X-API-Key": KEY_A}
        async with http.post(gw.url("/predict"), data=RED_PNG, headers=good) as r:
            assert r.status == 200


def test_the_key_file_is_read_no_further_than_its_bound(tmp_path: Path) -> None:
    """A file that never ends (a pipe kept open) is refused once the bound is passed."""
    pipe = tmp_path / "keys"
    os.mkfifo(pipe)
    hung_up = threading.Event()

    def writer() -> None:
        with open(pipe, "wb") as stream:
            stream.write(b"#" * 65_537)  # one byte past the bound, all of it read
            stream.flush()
            if not done.wait(5):  # a reader waiting for the end gets it, but too late
                hung_up.set()

    done = threading.Event()
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with pytest.raises(SettingsError) as big:
            auth.KeyStore.open(str(pipe))
    finally:
        done.set()
        thread.join()
    assert not hung_up.is_set()
    assert big.value.problems == [f"  GATEWAY_API_KEYS_FILE: ({pipe}) is larger than 65536 bytes"]
