"""API keys from a mounted Secret: both header forms, 401s counted by reason, checked before the
body, the memory budget or an in-flight slot; rotation by the kubelet's symlink swap."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from multidict import CIMultiDictProxy

from gateway import auth
from gateway.app import create_app
from gateway.settings import SettingsError, load_settings
from tests.gateway.client import IN_FLIGHT, scrape, until
from tests.gateway.rawhttp import RawClient, head
from tests.gateway.support import RED_PNG, RunningGateway
from tools.fake_tfserving import FakeTFServing

pytestmark = pytest.mark.asyncio
Factory = Callable[..., Awaitable[RunningGateway]]
OLD, NEW, WRONG = "old-" + "o" * 36, "new-" + "n" * 36, "bad-" + "w" * 36


class Secret:
    """A Secret volume as the kubelet writes it: keys -> ..data/keys, ..data -> ..<version>."""

    def __init__(self, root: Path) -> None:
        self.root, self.version = root, 0
        (root / "keys").symlink_to("..data/keys")

    @property
    def path(self) -> str:
        return str(self.root / "keys")

    def write(self, text: str) -> None:
        self.version += 1
        directory = self.root / f"..v{self.version}"
        directory.mkdir()
        (directory / "keys").write_text(text)
        swap = self.root / "..data_tmp"
        swap.symlink_to(directory.name)
        os.replace(swap, self.root / "..data")  # atomic, as the kubelet's rename


@pytest.fixture
def secret(tmp_path: Path) -> Secret:
    volume = Secret(tmp_path)
    volume.write(f"# rotation in progress\n{OLD}\n{NEW}\n")
    return volume


@pytest_asyncio.fixture
async def gw(gateway_factory: Factory, secret: Secret) -> RunningGateway:
    return await gateway_factory(api_keys_file=secret.path, key_check_seconds=0.02)


async def predict(
    http: aiohttp.ClientSession, gw: RunningGateway, headers: dict[str, str]
) -> tuple[int, CIMultiDictProxy[str], dict[str, str]]:
    headers = {"Content-Type": "image/png", **headers}
    async with http.post(gw.url("/predict"), data=RED_PNG, headers=headers) as r:
        return r.status, r.headers, await r.json()


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {OLD}"}, {"authorization": f"bearer  {NEW}"},
     {"X-API-Key": NEW}, {"Authorization": "Basic dXNlcjpwdw==", "X-API-Key": OLD}],
    ids=["bearer", "bearer-case", "x-api-key", "other-scheme-and-x-api-key"],
)  # fmt: skip
async def test_each_key_in_either_header_is_served(
    gw: RunningGateway, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    status, _, body = await predict(http, gw, headers)
    assert status == 200 and body["top"], body


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({}, "auth_missing"),
     ({"Authorization": "Basic dXNlcjpwdw=="}, "auth_malformed"),
     ({"X-API-Key": "too-short"}, "auth_malformed"),
     ({"Authorization": "Bearer"}, "auth_malformed"),
     ({"Authorization": f"Bearer {WRONG}"}, "auth_invalid"),
     ({"X-API-Key": WRONG}, "auth_invalid"),
     ({"X-API-Key": OLD[:-1]}, "auth_invalid")],
    ids=["none", "basic", "short", "empty-bearer", "wrong-bearer", "wrong-x-api-key", "prefix"],
)  # fmt: skip
async def test_a_refusal_is_a_401_with_a_challenge_counted_by_reason_never_logged(
    gw: RunningGateway,
    http: aiohttp.ClientSession,
    headers: dict[str, str],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    status, response_headers, body = await predict(http, gw, headers)
    assert status == 401 and body["error"], body
    assert response_headers["WWW-Authenticate"] == "Bearer"
    assert response_headers["Connection"] == "close"
    metrics = await scrape(http, gw)
    assert metrics[("gateway_errors_total", (("reason", reason), ("route", "/predict")))] == 1
    assert metrics[("gateway_requests_total", (("route", "/predict"), ("status", "401")))] == 1
    for value in headers.values():
        assert value.split()[-1] not in caplog.text


async def test_probes_stay_open_and_every_other_route_is_closed(
    gw: RunningGateway, http: aiohttp.ClientSession
) -> None:
    for path in ("/healthz", "/readyz"):
        async with http.get(gw.url(path)) as r:
            assert r.status == 200, path
    for path in ("/nope", "/healthz/", "/readyz/x", "/metrics"):  # open means these two routes
        async with http.get(gw.url(path)) as r:
            assert r.status == 401, path
    async with http.get(gw.metrics_url()) as r:  # the metrics port is not the public one
        assert r.status == 200


async def test_the_key_is_checked_before_a_slot_memory_or_the_body(
    gateway_factory: Factory, secret: Secret, fake_tfs: FakeTFServing, http: aiohttp.ClientSession
) -> None:
    gw = await gateway_factory(api_keys_file=secret.path, max_in_flight=1)
    hold = asyncio.Event()
    fake_tfs.behaviour.hold = hold
    busy = asyncio.create_task(predict(http, gw, {"X-API-Key": OLD}))
    await until(lambda: fake_tfs.predict_calls == 1)
    assert (await predict(http, gw, {}))[0] == 401  # not 503: the flood takes no slot
    raw = await RawClient.connect(gw.base)  # a body larger than any limit, never sent
    await raw.send(head("POST", "/predict", content_type="image/png", content_length=1 << 40))
    assert (await raw.response())[0] == 401  # not 413, and no memory reserved
    expect = await RawClient.connect(gw.base)
    await expect.send(head("POST", "/predict", content_type="image/png",
                           content_length=len(RED_PNG), expect="100-continue"))  # fmt: skip
    assert (await expect.response())[0] == 401  # no "100 Continue" invites the body
    hold.set()
    assert (await busy)[0] == 200
    assert (await scrape(http, gw))[IN_FLIGHT] == 0


async def test_a_client_with_a_key_is_invited_to_send_its_body(gw: RunningGateway) -> None:
    raw = await RawClient.connect(gw.base)
    request = head("POST", "/predict", content_type="image/png", content_length=len(RED_PNG),
                   expect="100-continue", x_api_key=OLD)  # fmt: skip
    await raw.send(request)
    async with asyncio.timeout(5):
        assert await raw.reader.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert await raw.reader.readline() == b"\r\n"
    await raw.send(RED_PNG)
    assert (await raw.response())[0] == 200


async def accepted(http: aiohttp.ClientSession, gw: RunningGateway, key: str) -> bool:
    status = (await predict(http, gw, {"X-API-Key": key}))[0]
    assert status in (200, 401)
    return status == 200


async def test_a_rotation_needs_no_restart(
    gw: RunningGateway, secret: Secret, http: aiohttp.ClientSession
) -> None:
    assert await accepted(http, gw, OLD)
    secret.write(f"{NEW}\n")  # the old key retired
    async with asyncio.timeout(3):
        while await accepted(http, gw, OLD):
            await asyncio.sleep(0.02)
    assert await accepted(http, gw, NEW)
    assert (await scrape(http, gw))[("gateway_api_keys", ())] == 1


async def test_a_file_gone_bad_keeps_the_last_keys_and_logs_once(
    gw: RunningGateway, secret: Secret, http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    store = gw.app[auth.KEYS]
    for broken in (f"{NEW}\nshort\n", "", "# nothing\n"):
        secret.write(broken)
        await until(lambda: store.failures >= secret.version - 1)
    os.unlink(secret.root / "..data")  # and the file disappears
    await until(lambda: store.failures >= 4)
    await asyncio.sleep(0.1)  # a few more checks of the same bad state
    assert await accepted(http, gw, OLD) and await accepted(http, gw, NEW)
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "API key" in r.message
    ]
    assert len(warnings) == 1, [r.message for r in warnings]
    assert "keeping the 2 keys" in warnings[0].message and NEW not in caplog.text
    secret.write(f"{WRONG}\n")  # a good file again: new keys, and a new failure would be logged
    await until(lambda: store.reloads == 1)
    assert await accepted(http, gw, WRONG) and not await accepted(http, gw, OLD)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot be read"), (b"", "no API key"), (b"# soon\n", "no API key"),
     (b"\xff" * 40, "not UTF-8"), (b"tiny\n", "line 1 must have 32")],
    ids=["missing", "empty", "comments-only", "binary", "short"],
)  # fmt: skip
async def test_a_bad_file_at_start_up_names_the_variable(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "keys"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SettingsError, match=message) as refused:
        create_app(load_settings(api_keys_file=str(path)))
    assert "GATEWAY_API_KEYS_FILE" in str(refused.value)


async def test_every_stored_key_is_compared_whichever_matches(
    secret: Secret, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret.write(f"{OLD}\n{NEW}\n{WRONG}\n")
    store = auth.KeyStore(secret.path)
    calls: list[bool] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        assert len(a) == len(b) == 32  # digests, never the keys themselves
        calls.append(real(a, b))
        return calls[-1]

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    for key, expected in ((OLD, True), (WRONG, True), ("x" * 40, False)):
        calls.clear()
        assert store.matches(key) is expected
        assert len(calls) == 3
