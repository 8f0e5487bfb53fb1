from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.gateway.support import ImageServer, RunningGateway, start_gateway
from tools.fake_tfserving import FakeTFServing


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Safety net: a Python socket may only connect to loopback. If the SSRF guard were broken,
    a test aiming at 10.x or 169.254.169.254 fails here instead of sending a packet."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(address: Any) -> None:
        if isinstance(address, tuple):
            ip = ipaddress.ip_address(str(address[0]).split("%")[0])
            if not ip.is_loopback:
                raise AssertionError(f"test code tried to connect to {address}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings read the environment: start every test from an empty gateway configuration."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_") or name == "PORT":
            monkeypatch.delenv(name)
    yield


@pytest_asyncio.fixture
async def fake_tfs() -> AsyncIterator[FakeTFServing]:
    fake = FakeTFServing()
    await fake.start()
    yield fake
    await fake.stop()


@pytest_asyncio.fixture
async def image_server() -> AsyncIterator[ImageServer]:
    server = await ImageServer().start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture
async def gateway_factory(
    fake_tfs: FakeTFServing,
) -> AsyncIterator[Callable[..., Awaitable[RunningGateway]]]:
    started: list[RunningGateway] = []

    async def start(**overrides: Any) -> RunningGateway:
        gw = await start_gateway(fake_tfs.port, **overrides)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        await gw.close()


@pytest_asyncio.fixture
async def gateway(gateway_factory: Callable[..., Awaitable[RunningGateway]]) -> RunningGateway:
    """Default settings, plus the loopback image server allowlisted by address."""
    return await gateway_factory(allowed_internal="127.0.0.1/32")
