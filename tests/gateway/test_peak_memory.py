"""The memory bound holds in the real process: the worst legal inputs at full concurrency, as
deployed (one decode thread, a 512 MiB limit), and the peak RSS stays under 80 % of the limit."""

from __future__ import annotations

import asyncio
import io
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from config.paths import PROJECT_ROOT
from tests.gateway.processes import gateway_env
from tools.fake_tfserving import FakeTFServing

pytestmark = pytest.mark.asyncio
MiB = 1024 * 1024
LIMIT = 512 * MiB
MAX_BODY = 10 * MiB  # GATEWAY_MAX_DOWNLOAD_BYTES, default
MAX_PIXELS = 25_000_000  # GATEWAY_MAX_PIXELS, default
CONCURRENCY = 16  # GATEWAY_MAX_IN_FLIGHT, default
SECONDS = 3.0


def worst_png() -> bytes:
    """A legal PNG at both limits: 25 MP of RGBA (100 MB once decoded) in just under 10 MiB,
    noise in the first rows so the file is big, flat after that so it stays legal."""
    side = int(MAX_PIXELS**0.5)
    pixels = np.zeros((side, side, 4), dtype=np.uint8)
    noisy_rows = (MAX_BODY - 512 * 1024) // (side * 4)
    pixels[:noisy_rows] = np.random.default_rng(0).integers(0, 256, (noisy_rows, side, 4))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=1)
    data = buffer.getvalue()
    assert MAX_BODY * 0.9 < len(data) <= MAX_BODY, len(data)
    return data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


@pytest_asyncio.fixture
async def deployed_gateway(fake_tfs: FakeTFServing) -> AsyncIterator[tuple[str, int]]:
    port = _free_port()
    env = gateway_env(PORT=str(port))
    env |= {
        "GATEWAY_TF_SERVING_TARGET": f"127.0.0.1:{fake_tfs.port}",
        "GATEWAY_WORKER_THREADS": "1",  # the Pulumi program's 1-CPU pod
        "GATEWAY_MEMORY_LIMIT_BYTES": str(LIMIT),
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=PROJECT_ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with http.get(base + "/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "gateway did not start"
                await asyncio.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_peak_rss_stays_under_80_percent_of_the_limit(
    deployed_gateway: tuple[str, int], fake_tfs: FakeTFServing
) -> None:
    base, pid = deployed_gateway
    fake_tfs.behaviour.latency_s = 0.02
    body = worst_png()
    outcomes: Counter[int] = Counter()
    refusals_without_retry_after = 0
    stop = time.monotonic() + SECONDS

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal refusals_without_retry_after
        while time.monotonic() < stop:
            headers = {"Content-Type": "image/png"}
            try:
                async with http.post(base + "/predict", data=body, headers=headers) as r:
                    await r.read()
                    outcomes[r.status] += 1
                    if r.status == 503 and r.headers.get("Retry-After") != "1":
                        refusals_without_retry_after += 1
            except aiohttp.ClientError:  # refused early: the gateway closed mid-upload
                outcomes[0] += 1
                await asyncio.sleep(0.05)

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await asyncio.gather(*(client(http) for _ in range(CONCURRENCY)))
    peak = peak_rss(pid)
    assert outcomes[200] >= 1, outcomes  # the worst legal image is served, not only refused
    assert set(outcomes) <= {200, 503, 0}, outcomes
    assert refusals_without_retry_after == 0
    assert peak < 0.8 * LIMIT, f"peak RSS {peak / MiB:.0f} MiB of {LIMIT / MiB:.0f}; {outcomes}"
