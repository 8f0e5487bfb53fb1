"""The drain on SIGTERM: no new connections, /readyz failing at once, requests in flight
finished, requests on kept-alive connections answered with `Connection: close`, exit 0."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable

import pytest

from gateway.drain import DRAIN
from tests.gateway.client import until
from tests.gateway.processes import gateway_env, gateway_process
from tests.gateway.rawhttp import RawClient, head
from tests.gateway.support import RED_PNG, RunningGateway
from tools.fake_tfserving import FakeTFServing

pytestmark = pytest.mark.asyncio
Factory = Callable[..., Awaitable[RunningGateway]]
BOUND = 5.0  # GATEWAY_SHUTDOWN_SECONDS in the process test


def upload() -> bytes:
    return head("POST", "/predict", content_type="image/png", content_length=len(RED_PNG)) + (
        RED_PNG
    )


async def refused(base: str, timeout: float = 3.0) -> bool:
    """True once a new connection to `base` is refused."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection(host, int(port))
            except ConnectionRefusedError:
                return True
            writer.close()
            await asyncio.sleep(0.01)


async def test_sigterm_finishes_what_is_in_flight_and_exits_0(fake_tfs: FakeTFServing) -> None:
    hold = asyncio.Event()
    fake_tfs.behaviour.hold = hold
    env = gateway_env(
        GATEWAY_TF_SERVING_TARGET=f"127.0.0.1:{fake_tfs.port}",
        GATEWAY_SHUTDOWN_SECONDS=str(BOUND),
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    # The health wait blocks this loop, which the fake needs only once requests arrive.
    with gateway_process(env) as proc:
        kept = await RawClient.connect(base)  # kept alive across the SIGTERM
        await kept.send(head("GET", "/healthz"))
        assert (await kept.response())[0] == 200
        slow = await RawClient.connect(base)
        await slow.send(upload())
        await until(lambda: fake_tfs.predict_calls == 1, timeout=5)
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert await refused(base)  # the listener is closed...
        await kept.send(head("GET", "/readyz"))  # ...an open connection is still served
        status, headers, body = await kept.response()
        assert (status, headers["connection"]) == (503, "close"), (status, headers, body)
        assert "draining" in body["error"]
        assert await kept.closed_by_server(timeout=2)
        assert proc.poll() is None  # still waiting for the request in flight
        hold.set()
        status, headers, body = await slow.response()
        assert (status, headers["connection"]) == (200, "close"), body
        assert body["model"]["version"] == 1
        assert await asyncio.to_thread(proc.wait, BOUND + 5) == 0
        assert time.monotonic() - signalled < BOUND
        assert proc.stdout is not None
        log = proc.stdout.read().decode()
        assert "draining: 1 requests in flight" in log and "drained: exiting" in log, log


async def test_the_drain_is_bounded(gateway_factory: Factory, fake_tfs: FakeTFServing) -> None:
    fake_tfs.behaviour.hold = asyncio.Event()  # never set: this request outlives the bound
    gw = await gateway_factory(shutdown_seconds=0.4)
    stuck = await RawClient.connect(gw.base)
    await stuck.send(upload())
    await until(lambda: fake_tfs.predict_calls == 1)
    start = time.monotonic()
    await gw.server.drain()
    assert time.monotonic() - start < 0.4 + 0.5  # the bound, and aiohttp's final grace
    assert await stuck.closed_by_server(timeout=1)  # cut, not answered


async def test_a_request_on_a_kept_alive_connection_is_served_with_connection_close(
    gateway_factory: Factory, fake_tfs: FakeTFServing
) -> None:
    hold = asyncio.Event()
    fake_tfs.behaviour.hold = hold
    gw = await gateway_factory(shutdown_seconds=5)
    kept, slow = await RawClient.connect(gw.base), await RawClient.connect(gw.base)
    await kept.send(head("GET", "/healthz"))
    assert (await kept.response())[1].get("connection") != "close"
    await slow.send(upload())
    await until(lambda: fake_tfs.predict_calls == 1)
    draining = asyncio.create_task(gw.server.drain())
    await until(lambda: gw.app[DRAIN].draining)
    await kept.send(upload())  # a new prediction on an idle kept-alive connection
    await until(lambda: fake_tfs.predict_calls == 2)
    hold.set()
    for client in (slow, kept):
        status, headers, body = await client.response()
        assert (status, headers["connection"]) == (200, "close"), body
    await asyncio.wait_for(draining, 2)
    assert await refused(gw.base, timeout=1)
