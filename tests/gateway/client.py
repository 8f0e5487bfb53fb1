"""Helpers for tests that talk to a running gateway over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.support import RED_PNG, RunningGateway
from tools.fake_tfserving import FakeTFServing, fake_logits


async def post_image(
    http: aiohttp.ClientSession, gw: RunningGateway, body: bytes, ctype: str = "image/png"
) -> tuple[int, dict[str, Any]]:
    async with http.post(gw.url("/predict"), data=body, headers={"Content-Type": ctype}) as r:
        return r.status, await r.json()


async def post_url(
    http: aiohttp.ClientSession, gw: RunningGateway, url: str
) -> tuple[int, dict[str, Any]]:
    async with http.post(gw.url("/predict"), json={"url": url}) as r:
        return r.status, await r.json()


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def expected_probabilities(pixel: tuple[float, float, float]) -> np.ndarray:
    tensor = np.broadcast_to(np.array(pixel, dtype=np.float32), (1, 4, 4, 3))
    return softmax(fake_logits(tensor, 10)[0].astype(np.float64))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def scrape(http: aiohttp.ClientSession, gw: RunningGateway) -> dict[Any, float]:
    async with http.get(gw.metrics_url()) as r:
        assert r.status == 200
        return samples(await r.text())


IN_FLIGHT = ("gateway_requests_in_flight", ())
SHED = ("gateway_errors_total", (("reason", "overloaded"), ("route", "/predict")))


async def assert_capacity(
    http: aiohttp.ClientSession, gw: RunningGateway, fake: FakeTFServing, n: int
) -> None:
    """Exactly n predicts run at once: n are held in the model, the next is refused."""
    hold = asyncio.Event()
    fake.behaviour.hold = hold
    first = fake.predict_calls
    held = [asyncio.create_task(post_image(http, gw, RED_PNG)) for _ in range(n)]
    try:
        await until(lambda: fake.predict_calls == first + n)  # times out if a slot leaked
        status, body = await post_image(http, gw, RED_PNG)
        assert status == 503, body
    finally:
        hold.set()
        fake.behaviour.hold = None
    assert [status for status, _ in await asyncio.gather(*held)] == [200] * n
