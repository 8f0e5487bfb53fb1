"""/metrics is served on GATEWAY_METRICS_PORT only, which the Service does not expose."""

from __future__ import annotations

import aiohttp
import pytest

from tests.gateway.client import post_image, samples
from tests.gateway.support import RED_PNG, RunningGateway

pytestmark = pytest.mark.asyncio


async def test_metrics_only_on_their_own_port(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    assert gateway.metrics_base != gateway.base
    assert (await post_image(http, gateway, RED_PNG))[0] == 200
    async with http.get(gateway.url("/metrics")) as r:
        assert r.status == 404 and (await r.json())["error"]
    async with http.get(gateway.metrics_url()) as r:
        assert r.status == 200 and r.content_type == "text/plain"
        found = samples(await r.text())
    # The API port's traffic, the 404 included, is what the metrics port reports.
    assert found[("gateway_requests_total", (("route", "/predict"), ("status", "200")))] == 1
    assert found[("gateway_requests_total", (("route", "unmatched"), ("status", "404")))] == 1
    for path in ("/predict", "/healthz", "/readyz"):  # and it serves nothing else
        async with http.get(gateway.metrics_url(path)) as r:
            assert r.status == 404 and (await r.json())["error"], path
