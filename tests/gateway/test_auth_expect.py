"""`Expect: 100-continue` with API keys, byte for byte on the wire: only a request that will be
served is invited to send its body; any other expectation is a 417 naming it; HTTP/1.0 clients
are never sent an interim response."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.app import create_app
from gateway.server import Server
from gateway.settings import load_settings
from tests.gateway.rawhttp import RawClient, head
from tests.gateway.support import RED_PNG, RunningGateway
from tools.fake_tfserving import FakeTFServing

pytestmark = pytest.mark.asyncio
Factory = Callable[..., Awaitable[RunningGateway]]
KEY = "k" * 40


@pytest_asyncio.fixture
async def gw(gateway_factory: Factory, tmp_path: Path) -> RunningGateway:
    (tmp_path / "keys").write_text(f"{KEY}\n")
    return await gateway_factory(api_keys_file=str(tmp_path / "keys"))


async def first_line(gw: RunningGateway, request: bytes) -> tuple[RawClient, bytes]:
    raw = await RawClient.connect(gw.base)
    await raw.send(request)
    return raw, await raw.reader.readline()


def predict_head(expect: str, version: str = "HTTP/1.1", **headers: str | int) -> bytes:
    text = head("POST", "/predict", content_type="image/png", content_length=len(RED_PNG),
                expect=expect, **headers)  # fmt: skip
    return text.replace(b" HTTP/1.1\r\n", f" {version}\r\n".encode(), 1)


async def test_a_request_without_a_key_is_answered_before_its_body(gw: RunningGateway) -> None:
    raw, line = await first_line(gw, predict_head("100-continue"))
    assert line == b"HTTP/1.1 401 Unauthorized\r\n"
    raw.close()


async def test_a_request_with_a_key_is_invited_whatever_the_case(gw: RunningGateway) -> None:
    raw, line = await first_line(gw, predict_head("100-Continue", x_api_key=KEY))
    assert line == b"HTTP/1.1 100 Continue\r\n"
    assert await raw.reader.readline() == b"\r\n"
    await raw.send(RED_PNG)
    status, headers, body = await raw.response()
    assert status == 200 and body["top"], body
    assert int(headers["content-length"]) > 0
    raw.close()


async def test_another_expectation_is_a_417_naming_it(gw: RunningGateway) -> None:
    raw = await RawClient.connect(gw.base)
    await raw.send(predict_head("something-else", x_api_key=KEY))
    async with asyncio.timeout(10):
        assert await raw.reader.readline() == b"HTTP/1.1 417 Expectation Failed\r\n"
        headers: dict[str, str] = {}
        while (line := await raw.reader.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            headers[name.lower()] = value.strip()
        body = await raw.reader.readexactly(int(headers["content-length"]))
    assert body == b"Unknown Expect: something-else"
    raw.close()


async def test_a_long_expectation_is_cut_in_the_answer(gw: RunningGateway) -> None:
    expect = "x" * 150
    raw = await RawClient.connect(gw.base)
    await raw.send(predict_head(expect, x_api_key=KEY))
    async with asyncio.timeout(10):
        assert await raw.reader.readline() == b"HTTP/1.1 417 Expectation Failed\r\n"
        length = 0
        while (line := await raw.reader.readline()) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await raw.reader.readexactly(length)
    assert body == b"Unknown Expect: " + b"x" * 100
    raw.close()


async def test_an_http_10_client_gets_no_interim_response(gw: RunningGateway) -> None:
    raw = await RawClient.connect(gw.base)
    await raw.send(predict_head("100-continue", "HTTP/1.0", x_api_key=KEY) + RED_PNG)
    line = await raw.reader.readline()
    assert line == b"HTTP/1.0 200 OK\r\n"
    raw.close()


async def test_the_access_log_counts_only_the_final_response(
    fake_tfs: FakeTFServing, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "keys").write_text(f"{KEY}\n")
    settings = load_settings(
        environ={},
        tf_serving_target=f"127.0.0.1:{fake_tfs.port}",
        api_keys_file=str(tmp_path / "keys"),
    )
    server = Server(
        create_app(settings), final_grace=0.1, access_log=logging.getLogger("aiohttp.access")
    )
    await server.start("127.0.0.1", 0, 0)
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    try:
        raw = await RawClient.connect(f"http://127.0.0.1:{server.port}")
        await raw.send(predict_head("100-continue", x_api_key=KEY))
        async with asyncio.timeout(10):
            assert await raw.reader.readline() == b"HTTP/1.1 100 Continue\r\n"
            assert await raw.reader.readline() == b"\r\n"
            await raw.send(RED_PNG)
            answer = [await raw.reader.readline()]
            while answer[-1] != b"\r\n":
                answer.append(await raw.reader.readline())
            length = next(
                int(x.split(b":")[1]) for x in answer if x.lower().startswith(b"content-length:")
            )
            answer.append(await raw.reader.readexactly(length))
            while not any("POST /predict" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.01)
        raw.close()
    finally:
        await server.close()
    assert answer[0] == b"HTTP/1.1 200 OK\r\n"
    [line] = [r.getMessage() for r in caplog.records if "POST /predict" in r.getMessage()]
    logged = re.search(r'" (\d{3}) (\d+) "', line)
    assert logged is not None, line
    assert (logged[1], int(logged[2])) == ("200", len(b"".join(answer)))
