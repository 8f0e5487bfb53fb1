"""A TF Serving replica goes away under load (issue 13's rollout test): two fake TF Serving
processes behind the gateway's one channel (an `ipv4:` target with both addresses, which
round_robin spreads calls over), clients keep sending, one replica stops half-way. No request
may fail: the calls it held finish (graceful stop) or are retried on the other (kill)."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.gateway.client import post_image
from tests.gateway.processes import fake_processes
from tests.gateway.support import RED_PNG, RunningGateway, start_gateway

pytestmark = pytest.mark.asyncio
Factory = Callable[..., Awaitable[RunningGateway]]
REQUESTS = 300
CLIENTS = 8
STOP_AFTER = 100  # answers before the replica goes


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["graceful", "kill"])
async def test_a_replica_going_away_under_load_fails_no_request(how: signal.Signals) -> None:
    # Two replicas of the same model, told apart by the version they report.
    with fake_processes(
        ("--versions", "1", "--latency-ms", "5", "--grace-seconds", "5"),
        ("--versions", "2", "--latency-ms", "5"),
    ) as [(a, a_port), (_, b_port)]:
        # Small tensors keep it fast; test_retry.py retries full-size (1 MB) requests.
        target = f"ipv4:127.0.0.1:{a_port},127.0.0.1:{b_port}"
        gw = await start_gateway(None, tf_serving_target=target, image_size=64)
        answers: list[tuple[int, Any]] = []
        stopped = asyncio.Event()
        queue = iter(range(REQUESTS))

        async def client(http: aiohttp.ClientSession) -> None:
            for _ in queue:
                status, body = await post_image(http, gw, RED_PNG)
                answers.append((status, body.get("model", {}).get("version") or body))
                if len(answers) == STOP_AFTER:
                    a.send_signal(how)
                    stopped.set()

        try:
            async with aiohttp.ClientSession() as http:
                await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
        finally:
            await gw.close()
        assert stopped.is_set()
        failed = [answer for answer in answers if answer[0] != 200]
        assert not failed, f"{len(failed)} failed: {failed[:3]}"
        assert len(answers) == REQUESTS
        versions = Counter(version for _, version in answers)
        assert versions[1] >= STOP_AFTER // 4 and versions[2] >= STOP_AFTER // 4, versions
        assert {version for _, version in answers[-STOP_AFTER:]} == {2}  # all on the survivor
        assert await asyncio.to_thread(a.wait, 10) in (0, -signal.SIGKILL)
