"""HTTP below the app: malformed requests get a JSON 400 and one quiet log line per peer, and
the connection cap holds."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from gateway.app import GUARD
from gateway.protocol import LINES_PER_INTERVAL, PEER_LOG_INTERVAL, MalformedRequestLog
from tests.gateway.client import post_image, scrape
from tests.gateway.rawhttp import RawClient, head
from tests.gateway.support import RED_PNG, RunningGateway

pytestmark = pytest.mark.asyncio
Factory = Callable[..., Awaitable[RunningGateway]]

MALFORMED = [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad\x00: 1\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS to a plain HTTP port\r\n\r\n",
    b"G\xc3\xa9T / HTTP/1.1\r\nHost: x\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", MALFORMED, ids=range(len(MALFORMED)))
async def test_malformed_http_is_a_json_400(
    request_bytes: bytes, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    client = await RawClient.connect(gateway.base)
    try:
        await client.send(request_bytes)
        status, headers, body = await client.response()
    finally:
        client.close()
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert body["error"].startswith("malformed HTTP request")
    assert (await post_image(http, gateway, RED_PNG))[0] == 200


async def test_malformed_http_is_logged_once_per_peer_without_traceback(
    gateway: RunningGateway, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for request_bytes in MALFORMED * 3:
        client = await RawClient.connect(gateway.base)
        await client.send(request_bytes)
        assert (await client.response())[0] == 400
        client.close()
    about_http = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(about_http) == 1  # one peer (127.0.0.1): one line per minute
    [line] = about_http
    assert line.levelno == logging.WARNING
    assert not [r for r in caplog.records if r.exc_info or r.exc_text]  # no traceback, any level
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    malformed = (await scrape(http, gateway))[("gateway_malformed_requests_total", ())]
    assert malformed == 3 * len(MALFORMED)


async def test_the_malformed_log_limits_peers_and_lines(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = MalformedRequestLog(clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="gateway"):
        assert log.report("10.0.0.1", "bad") is True
        assert log.report("10.0.0.1", "bad") is False  # same peer, same minute
        peers = [f"10.0.1.{i}" for i in range(LINES_PER_INTERVAL + 5)]
        written = [log.report(peer, "bad") for peer in peers]
        assert written.count(True) == LINES_PER_INTERVAL - 1  # the global cap
        now[0] += PEER_LOG_INTERVAL
        assert log.report("10.0.0.1", "bad") is True  # a new minute
    assert len(caplog.records) == LINES_PER_INTERVAL + 1
    assert "more not logged" in caplog.records[-1].getMessage()
    assert log.seen == LINES_PER_INTERVAL + 8


async def test_connections_beyond_the_cap_are_closed_at_once(gateway_factory: Factory) -> None:
    gw = await gateway_factory(max_connections=2)
    first, second = await RawClient.connect(gw.base), await RawClient.connect(gw.base)
    await first.send(head("GET", "/healthz"))
    assert (await first.response())[0] == 200
    third = await RawClient.connect(gw.base)
    try:
        assert await third.closed_by_server(timeout=5)
        assert gw.app[GUARD].refused_connections == 1
        second.close()
        await first.send(head("GET", "/healthz"))  # kept-alive connections still serve
        assert (await first.response())[0] == 200
    finally:
        first.close()
        third.close()
    for _ in range(50):  # the closed ones are released: a new connection is served
        fresh = await RawClient.connect(gw.base)
        await fresh.send(head("GET", "/healthz"))
        try:
            if (await fresh.response())[0] == 200:
                break
        except (AssertionError, ConnectionError):
            pass
        finally:
            fresh.close()
    else:
        pytest.fail("no connection was accepted after the others closed")
    assert gw.app[GUARD].open_connections <= 1
