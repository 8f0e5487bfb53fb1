"""What a client reads when an image URL is refused or its download fails, message by message,
both edges of the size and redirect bounds, and what the downloader sends upstream. Against a
real server on loopback; names resolve through a test hook, without any network."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from gateway.download import Downloader
from gateway.errors import (
    DownloadRefusedError,
    GatewayError,
    PayloadTooLargeError,
    UpstreamTimeoutError,
)
from gateway.memory import MemoryBudget
from gateway.netguard import AddressPolicy
from tests.gateway.support import RED_PNG, ImageServer, fake_dns

pytestmark = pytest.mark.asyncio
DNS = {"images.test": ["127.0.0.1"], "evil.example": ["10.0.0.1"]}
Make = Callable[..., Downloader]


@pytest_asyncio.fixture
async def make() -> AsyncIterator[Make]:
    made: list[Downloader] = []

    def factory(**kwargs: Any) -> Downloader:
        options: dict[str, Any] = {"max_bytes": 100 * 1024, "timeout": 2.0, "max_redirects": 3,
                                   "lookup": fake_dns(DNS)}  # fmt: skip
        options.update(kwargs)
        downloader = Downloader(AddressPolicy.from_entries(["images.test"]), **options)
        made.append(downloader)
        return downloader

    yield factory
    for downloader in made:
        await downloader.close()


async def fetch(downloader: Downloader, url: str) -> bytes:
    budget = MemoryBudget(1 << 30)
    with budget.reservation("image") as memory, await downloader.fetch(url, memory) as body:
        return body.bytes()


async def failure(downloader: Downloader, url: str) -> tuple[type[GatewayError], int, str]:
    with pytest.raises(GatewayError) as failed:
        await fetch(downloader, url)
    return type(failed.value), failed.value.status, failed.value.message


def refused(message: str) -> tuple[type[GatewayError], int, str]:
    return DownloadRefusedError, 400, message


@pytest.mark.parametrize(
    ("url", "message"),
    [("ftp://images.test/x.png", "only http and https URLs are allowed, not 'ftp'"),
     ("file:///etc/passwd", "only http and https URLs are allowed, not 'file'"),
     ("/red.png", "only http and https URLs are allowed, not ''"),
     ("http:///x", "URL has no host"),
     ("http://user@images.test/", "URLs with credentials are not allowed"),
     ("http://:pw@images.test/", "URLs with credentials are not allowed"),
     ("http://[::1", "invalid URL: Invalid IPv6 URL"),
     ("http://images.test:99999/", "invalid URL: Port out of range 0-65535"),
     ("http://xn--zz/x.png", "invalid URL: decoding with 'idna' codec failed (UnicodeError: "
                             "decoding with 'punycode' codec failed (UnicodeError: incomplete "
                             "punicode string))"),
     ("  http://10.0.0.1/  ", "address 10.0.0.1 of host '10.0.0.1' is not allowed"),
     ("http://[::1]/", "address ::1 of host '::1' is not allowed"),
     ("http://0x7f.1/", "host '0x7f.1' is not a canonical IP address or name"),
     ("http://evil.example/", "address 10.0.0.1 of host 'evil.example' is not allowed"),
     ("http://nowhere.test/", "cannot resolve host 'nowhere.test'"),
     ("http://[1:2:3:4:5:6:7:8:9" + ":1" * 100 + "]/", "image download failed: encoding with "
      "'idna' codec failed (UnicodeError: label too long)")],
)  # fmt: skip
async def test_a_refused_url(make: Make, url: str, message: str) -> None:
    assert await failure(make(), url) == refused(message)


async def test_a_long_refusal_is_cut_at_200_characters(make: Make) -> None:
    host = "x" * 100 + "\u200d" + "y" * 150  # a zero-width joiner: yarl quotes the whole host
    assert await failure(make(), f"http://{host}/") == refused(
        "invalid URL: Host '" + "x" * 100 + "\\u200d" + "y" * 88
    )


async def test_an_upstream_status_other_than_200(make: Make, image_server: ImageServer) -> None:
    downloader = make()
    for code in (404, 500, 204):
        assert await failure(downloader, image_server.url(f"/status/{code}", "images.test")) == (
            refused(f"image URL answered HTTP {code}")
        )


async def test_a_closed_port(make: Make) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert await failure(make(), f"http://images.test:{port}/x.png") == refused(
        "image download failed: ClientConnectorError"
    )


async def test_surrounding_spaces_are_ignored(make: Make, image_server: ImageServer) -> None:
    url = "  " + image_server.url("/red.png", "images.test") + "\n"
    assert await fetch(make(), url) == RED_PNG


async def test_redirect_bounds(make: Make, image_server: ImageServer) -> None:
    none = make(max_redirects=0)
    assert await fetch(none, image_server.url("/red.png", "images.test")) == RED_PNG
    assert await failure(none, image_server.url("/redirect/1", "images.test")) == refused(
        "more than 0 redirects"
    )
    one = make(max_redirects=1)
    assert await fetch(one, image_server.url("/redirect/1", "images.test")) == RED_PNG
    assert await failure(one, image_server.url("/redirect/2", "images.test")) == refused(
        "more than 1 redirects"
    )


async def test_broken_redirects(make: Make, image_server: ImageServer) -> None:
    hop = image_server.url("/redirect-with/307", "images.test")
    downloader = make()
    assert await failure(downloader, f"{hop}?to=") == refused("redirect 307 without Location")
    assert await failure(downloader, f"{hop}?to=http://[::1") == refused(
        "invalid redirect Location: Invalid IPv6 URL"
    )
    assert await failure(downloader, f"{hop}?to=ftp://images.test/") == refused(
        "only http and https URLs are allowed, not 'ftp'"
    )
    relative = await fetch(downloader, f"{hop}?to=/red.png")
    assert relative == RED_PNG


async def test_both_edges_of_the_size_bound(make: Make, image_server: ImageServer) -> None:
    url = image_server.url("/big.bin", "images.test")  # 200 KiB with Content-Length
    assert len(await fetch(make(max_bytes=200 * 1024), url)) == 200 * 1024
    assert await failure(make(max_bytes=200 * 1024 - 1), url) == (
        PayloadTooLargeError,
        413,
        "image is 204800 bytes, more than 204799",
    )
    streamed = image_server.url("/chunked-big", "images.test")  # no Content-Length
    assert len(await fetch(make(max_bytes=200 * 1024), streamed)) == 200 * 1024
    assert await failure(make(max_bytes=200 * 1024 - 1), streamed) == (
        PayloadTooLargeError,
        413,
        "image is more than 204799 bytes",
    )


async def test_a_download_that_takes_too_long(make: Make, image_server: ImageServer) -> None:
    url = image_server.url("/slow-headers", "images.test")
    assert await failure(make(timeout=0.3), url) == (
        UpstreamTimeoutError,
        504,
        "image download took longer than 0.3 s",
    )
    trickle = image_server.url("/trickle", "images.test")
    assert await failure(make(timeout=0.25), trickle) == (
        UpstreamTimeoutError,
        504,
        "image download took longer than 0.25 s",
    )


async def test_what_is_sent_upstream(make: Make) -> None:
    seen: list[dict[str, str]] = []

    async def image(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=RED_PNG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/x.png", image)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert await fetch(make(), f"http://images.test:{port}/x.png") == RED_PNG
    finally:
        await runner.cleanup()
    [headers] = seen
    assert headers["User-Agent"] == "tfserving-gateway"
    assert headers["Accept-Encoding"] == "identity"
    assert headers["Host"] == f"images.test:{port}"


async def test_the_backstop_timeout_is_later_than_the_deadline(make: Make) -> None:
    """The session's own limit (a backstop) never cuts a download the deadline allows."""

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.8)
        return web.Response(body=RED_PNG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/x.png", slow)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        assert await fetch(make(timeout=1.5), f"http://images.test:{port}/x.png") == RED_PNG
    finally:
        await runner.cleanup()


async def test_the_buffer_is_sized_from_content_length(
    make: Make, image_server: ImageServer
) -> None:
    downloader = make(max_bytes=300 * 1024)
    budget = MemoryBudget(1 << 30)
    with budget.reservation("image") as memory:
        url = image_server.url("/big.bin", "images.test")  # 200 KiB, declared
        with await downloader.fetch(url, memory) as body:
            assert (body.capacity, body.size, body.what) == (200 * 1024, 200 * 1024, "image")
        streamed = image_server.url("/chunked-big", "images.test")  # not declared: the cap
        with await downloader.fetch(streamed, memory) as body:
            assert (body.capacity, body.size) == (300 * 1024, 200 * 1024)


async def test_the_deadline_covers_waiting_for_the_answer(
    make: Make, image_server: ImageServer
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await failure(make(timeout=0.3), image_server.url("/slow-headers", "images.test")) == (
        UpstreamTimeoutError,
        504,
        "image download took longer than 0.3 s",
    )
    # At the deadline, not at the session's backstop one second later.
    assert loop.time() - started < 1.2


async def test_https_certificates_are_verified_by_default(make: Make, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=images.test", "-addext",
         "subjectAltName=DNS:images.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server = await ImageServer().start(ssl_context=server_ctx)
    try:
        url = server.url("/red.png", "images.test", "https")
        assert await failure(make(), url) == refused(
            "image download failed: ClientConnectorCertificateError"
        )
        assert server.hits == []
    finally:
        await server.stop()
