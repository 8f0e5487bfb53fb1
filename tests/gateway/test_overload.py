"""Load shedding: in-flight slots and the memory budget refuse at once with 503 + Retry-After."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import aiohttp
import grpc
import pytest

from gateway.app import LIMIT
from tests.gateway.client import (
    IN_FLIGHT,
    SHED,
    assert_capacity,
    post_image,
    scrape,
    until,
)
from tests.gateway.support import (
    RED_PNG,
    RunningGateway,
)
from tools.fake_tfserving import FakeTFServing

pytestmark = pytest.mark.asyncio
Factory = Callable[..., Awaitable[RunningGateway]]


# Load shedding. The fake's `hold` keeps requests inside the model call, so "in flight" is a
# state the test controls, not a timing guess.


async def test_overload_is_refused_at_once_with_retry_after(
    gateway_factory: Factory, http: aiohttp.ClientSession, fake_tfs: FakeTFServing
) -> None:
    gw = await gateway_factory(max_in_flight=2)
    hold = asyncio.Event()
    fake_tfs.behaviour.hold = hold
    held = [asyncio.create_task(post_image(http, gw, RED_PNG)) for _ in range(2)]
    never = asyncio.Event()

    async def endless_body():  # the gateway must answer without waiting for it
        yield b"x" * 1024
        await never.wait()

    try:
        await until(lambda: fake_tfs.predict_calls == 2)
        async with (
            asyncio.timeout(1),  # not waiting for a slot nor for the body
            http.post(
                gw.url("/predict"), data=endless_body(), headers={"Content-Type": "image/png"}
            ) as r,
        ):
            assert r.status == 503
            assert r.headers["Retry-After"] == "1"
            assert r.headers["Connection"] == "close"  # the retry may reach another pod
            assert "overloaded" in (await r.json())["error"]
        # Refused before the body is looked at: this would otherwise be a 415.
        async with http.post(gw.url("/predict"), data=b"x", headers={"Content-Type": "a/b"}) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "1"
        for path in ("/healthz", "/readyz"):
            async with http.get(gw.url(path)) as r:
                assert r.status == 200, path
        samples = await scrape(http, gw)
        assert samples[IN_FLIGHT] == 2
        assert samples[SHED] == 2
        assert samples[("gateway_requests_total", (("route", "/predict"), ("status", "503")))] == 2
        assert fake_tfs.predict_calls == 2  # the refused requests never reached the model
    finally:
        never.set()
        hold.set()
    assert [status for status, _ in await asyncio.gather(*held)] == [200, 200]
    assert (await scrape(http, gw))[IN_FLIGHT] == 0
    # Refusals neither took nor gave back a slot: the limit is still exactly 2.
    await assert_capacity(http, gw, fake_tfs, 2)


async def test_slots_come_back_after_errors(
    gateway_factory: Factory, http: aiohttp.ClientSession, fake_tfs: FakeTFServing
) -> None:
    gw = await gateway_factory(max_in_flight=2, max_download_bytes=4096)
    assert (await post_image(http, gw, b"junk"))[0] == 422
    assert (await post_image(http, gw, RED_PNG, "text/plain"))[0] == 415
    assert (await post_image(http, gw, bytes(8192)))[0] == 413
    assert (await post_image(http, gw, b"{", "application/json"))[0] == 400
    fake_tfs.behaviour.fail = grpc.StatusCode.UNAVAILABLE
    assert (await post_image(http, gw, RED_PNG))[0] == 503
    fake_tfs.behaviour.fail = None
    fake_tfs.behaviour.num_classes = 3  # labels no longer match: 502
    assert (await post_image(http, gw, RED_PNG))[0] == 502
    fake_tfs.behaviour.num_classes = 10
    samples = await scrape(http, gw)
    assert samples[IN_FLIGHT] == 0
    assert SHED not in samples or samples[SHED] == 0
    await assert_capacity(http, gw, fake_tfs, 2)


@pytest.mark.parametrize("cancel", [False, True], ids=["handler-finishes", "handler-cancelled"])
async def test_slot_comes_back_after_client_disconnect(
    cancel: bool, gateway_factory: Factory, http: aiohttp.ClientSession, fake_tfs: FakeTFServing
) -> None:
    gw = await gateway_factory(max_in_flight=2, handler_cancellation=cancel)
    hold = asyncio.Event()
    fake_tfs.behaviour.hold = hold
    try:
        client = asyncio.create_task(post_image(http, gw, RED_PNG))
        await until(lambda: fake_tfs.predict_calls == 1)
        assert (await scrape(http, gw))[IN_FLIGHT] == 1
        client.cancel()  # the client gives up: its connection is closed
        with contextlib.suppress(asyncio.CancelledError):
            await client
        if cancel:  # aiohttp cancels the handler, which must give its slot back at once
            await until(lambda: gw.app[LIMIT].count == 0)
    finally:
        hold.set()
        fake_tfs.behaviour.hold = None
    await until(lambda: gw.app[LIMIT].count == 0)
    assert (await scrape(http, gw))[IN_FLIGHT] == 0
    await assert_capacity(http, gw, fake_tfs, 2)
