"""Slow clients cannot hold the service: trickling bodies hold no in-flight slot and are cut
below the minimum rate or past the deadline; a dripping request head is closed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from gateway.app import BUDGET, GUARD, LIMIT
from tests.gateway.client import post_image, scrape
from tests.gateway.rawhttp import RawClient, head
from tests.gateway.support import RED_PNG, RunningGateway

pytestmark = pytest.mark.asyncio
Factory = Callable[..., Awaitable[RunningGateway]]


async def start_tricklers(gw: RunningGateway, n: int, length: int = 100_000) -> list[RawClient]:
    """n uploads that declared `length` bytes and send a byte every 50 ms."""
    clients = []
    for _ in range(n):
        client = await RawClient.connect(gw.base)
        await client.send(head("POST", "/predict", Content_Type="image/png", Content_Length=length))
        clients.append(client)
    return clients


async def test_trickling_uploads_hold_no_slot_while_real_requests_are_served(
    gateway_factory: Factory, http: aiohttp.ClientSession
) -> None:
    # No rate rule and a long deadline: only the slot design keeps the service open here.
    gw = await gateway_factory(
        max_in_flight=2, min_upload_bytes_per_second=0, download_timeout_seconds=60
    )
    tricklers = await start_tricklers(gw, 8)  # four times the slots
    drips = [asyncio.create_task(c.drip(RED_PNG, every=0.05)) for c in tricklers]
    try:
        await asyncio.sleep(0.3)  # every trickler has started its body
        results = [await post_image(http, gw, RED_PNG) for _ in range(6)]
        assert [status for status, _ in results] == [200] * 6
        assert gw.app[LIMIT].count == 0  # the tricklers hold no slot...
        reserved = gw.app[BUDGET].reserved
        assert 0 < reserved <= 8 * len(RED_PNG)  # ...and only the bytes they have sent
    finally:
        for task in drips:
            task.cancel()
        for client in tricklers:
            client.close()


async def test_an_upload_below_the_minimum_rate_is_cut_with_408(
    gateway_factory: Factory, http: aiohttp.ClientSession
) -> None:
    gw = await gateway_factory(min_upload_bytes_per_second=2000, download_timeout_seconds=60)
    [client] = await start_tricklers(gw, 1)
    drip = asyncio.create_task(client.drip(RED_PNG * 20, every=0.05))  # ~20 B/s
    try:
        status, headers, body = await client.response()
        assert status == 408
        assert "2000 bytes/s" in body["error"]
        assert headers["content-type"].startswith("application/json")
    finally:
        drip.cancel()
        client.close()
    assert gw.app[BUDGET].reserved == 0
    assert (await post_image(http, gw, RED_PNG))[0] == 200


async def test_an_upload_past_its_deadline_is_cut_with_408(gateway_factory: Factory) -> None:
    gw = await gateway_factory(min_upload_bytes_per_second=0, download_timeout_seconds=0.5)
    [client] = await start_tricklers(gw, 1)
    drip = asyncio.create_task(client.drip(RED_PNG * 20, every=0.02, step=10))  # 500 B/s
    try:
        status, _, body = await client.response()
        assert status == 408
        assert "longer than 0.5 s" in body["error"]
    finally:
        drip.cancel()
        client.close()


async def test_a_connection_dripping_its_request_head_is_closed(
    gateway_factory: Factory, http: aiohttp.ClientSession
) -> None:
    gw = await gateway_factory(header_timeout_seconds=0.5)
    client = await RawClient.connect(gw.base)
    endless_head = b"POST /predict HTTP/1.1\r\n" + b"X-Padding: a\r\n" * 1000
    drip = asyncio.create_task(client.drip(endless_head, every=0.05, step=4))
    try:
        assert await client.closed_by_server(timeout=10)
        assert (await post_image(http, gw, RED_PNG))[0] == 200  # everyone else is served
        assert gw.app[GUARD].header_timeouts == 1
        metrics = await scrape(http, gw)
        assert metrics[("gateway_header_timeouts_total", ())] == 1
    finally:
        drip.cancel()
        client.close()


async def test_the_head_deadline_spares_idle_connections_and_slow_bodies(
    gateway_factory: Factory,
) -> None:
    gw = await gateway_factory(
        header_timeout_seconds=0.3, min_upload_bytes_per_second=0, download_timeout_seconds=30
    )
    idle = await RawClient.connect(gw.base)  # connected, nothing sent yet
    [slow_body] = await start_tricklers(gw, 1, length=len(RED_PNG))
    drip = asyncio.create_task(slow_body.drip(RED_PNG, every=0.004))  # ~1 s for the body
    try:
        status, _, body = await slow_body.response()
        assert status == 200, body  # its head was complete in time; the body has its own rules
        await idle.send(head("GET", "/healthz"))  # idle for longer than the head deadline
        assert (await idle.response())[0] == 200
        assert gw.app[GUARD].header_timeouts == 0
    finally:
        drip.cancel()
        idle.close()
        slow_body.close()
