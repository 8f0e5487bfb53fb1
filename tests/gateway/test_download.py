"""The downloader against a real HTTP(S) server on loopback. Names resolve through a test hook,
so `evil.example` can point at a private address without any network."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from gateway.download import Downloader
from gateway.errors import (
    DownloadRefusedError,
    OverloadedError,
    PayloadTooLargeError,
    UpstreamTimeoutError,
)
from gateway.memory import MemoryBudget
from gateway.netguard import AddressPolicy, system_lookup
from tests.gateway.support import RED_PNG, ImageServer, fake_dns

pytestmark = pytest.mark.asyncio

DNS = {
    "images.test": ["127.0.0.1"],
    "evil.example": ["10.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "loop6.example": ["::1"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "cgnat.example": ["100.64.1.1"],
    "ula.example": ["fd00::1"],
    "nat64.example": ["64:ff9b::7f00:1"],
    "mixed.example": ["93.184.216.34", "127.0.0.1"],
}


class Fetcher:
    """A Downloader with its own memory budget; fetch() answers the bytes."""

    def __init__(self, downloader: Downloader, budget: MemoryBudget) -> None:
        self.downloader = downloader
        self.budget = budget

    async def fetch(self, url: str) -> bytes:
        with (
            self.budget.reservation("image") as memory,
            await self.downloader.fetch(url, memory) as body,
        ):
            assert memory.nbytes == body.size  # every byte kept was reserved
            return body.bytes()


MakeDownloader = Callable[..., Fetcher]


@pytest_asyncio.fixture
async def make() -> AsyncIterator[MakeDownloader]:
    made: list[Fetcher] = []

    def factory(allow: tuple[str, ...] = (), budget: int = 1 << 30, **kwargs: Any) -> Fetcher:
        options: dict[str, Any] = {
            "max_bytes": 100 * 1024,
            "timeout": 2.0,
            "max_redirects": 3,
            "lookup": fake_dns(DNS),
        }
        options.update(kwargs)
        d = Fetcher(Downloader(AddressPolicy.from_entries(allow), **options), MemoryBudget(budget))
        made.append(d)
        return d

    yield factory
    for d in made:
        await d.downloader.close()
        assert d.budget.reserved == 0  # nothing leaked, whatever the outcome


async def test_fetches_an_allowlisted_host_by_name(make: MakeDownloader, image_server: ImageServer):
    body = await make(("images.test",)).fetch(image_server.url("/red.png", "images.test"))
    assert body == RED_PNG
    assert image_server.hosts == [f"images.test:{image_server.port}"]  # Host header kept


async def test_fetches_an_allowlisted_network(make: MakeDownloader, image_server: ImageServer):
    assert await make(("127.0.0.1/32",)).fetch(image_server.url("/red.png")) == RED_PNG


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.0.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "192.168.0.1",
        "0.0.0.0",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[fe80::1]",
        "[fc00::1]",
        "2130706433",
        "127.1",
        "0x7f.1",
        "017700000001",
    ],
)
async def test_internal_ip_literals_are_refused_without_allowlist(
    host: str, make: MakeDownloader, image_server: ImageServer
):
    with pytest.raises(DownloadRefusedError):
        await make().fetch(image_server.url("/red.png", host))
    assert image_server.hits == []


@pytest.mark.parametrize("name", sorted(n for n in DNS if n != "images.test"))
async def test_names_resolving_to_internal_addresses_are_refused(
    name: str, make: MakeDownloader, image_server: ImageServer
):
    with pytest.raises(DownloadRefusedError, match="not allowed"):
        await make().fetch(image_server.url("/red.png", name))
    assert image_server.hits == []


async def test_localhost_through_the_real_resolver_is_refused(
    make: MakeDownloader, image_server: ImageServer
):
    with pytest.raises(DownloadRefusedError):
        await make(lookup=system_lookup).fetch(image_server.url("/red.png", "localhost"))
    assert image_server.hits == []


async def test_allowlisting_one_address_does_not_open_its_neighbours(
    make: MakeDownloader, image_server: ImageServer
):
    with pytest.raises(DownloadRefusedError):
        await make(("127.0.0.1/32",)).fetch(image_server.url("/red.png", "127.0.0.2"))
    assert image_server.hits == []


async def test_no_dns_rebinding_between_check_and_connect(
    make: MakeDownloader, image_server: ImageServer
):
    """The first answer is allowed, every later one is private. A downloader that resolves once
    to check and again to connect would connect to 10.0.0.1 (and trip the loopback guard)."""
    answers: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        answers.append(host)
        return ["127.0.0.1"] if len(answers) == 1 else ["10.0.0.1"]

    body = await make(("127.0.0.1/32",), lookup=rebinding).fetch(
        image_server.url("/red.png", "rebind.example")
    )
    assert body == RED_PNG
    assert answers == ["rebind.example"]


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://images.test/x.png", "gopher://images.test/", "data:,x", "/x"],
)
async def test_only_http_and_https(url: str, make: MakeDownloader):
    with pytest.raises(DownloadRefusedError):
        await make(("images.test",)).fetch(url)


async def test_credentials_in_url_are_refused(make: MakeDownloader, image_server: ImageServer):
    with pytest.raises(DownloadRefusedError, match="credentials"):
        await make(("images.test",)).fetch(
            f"http://user:pw@images.test:{image_server.port}/red.png"
        )


async def test_follows_up_to_the_redirect_limit(make: MakeDownloader, image_server: ImageServer):
    d = make(("images.test",))
    assert await d.fetch(image_server.url("/redirect/3", "images.test")) == RED_PNG
    with pytest.raises(DownloadRefusedError, match="more than 3 redirects"):
        await d.fetch(image_server.url("/redirect/4", "images.test"))


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/red.png",  # literal not covered by the name allowlist
        "http://evil.example:{port}/red.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/red.png",
        "file:///etc/passwd",
    ],
)
async def test_every_redirect_is_checked_again(
    target: str, make: MakeDownloader, image_server: ImageServer
):
    location = target.format(port=image_server.port)
    url = image_server.url("/redirect-to", "images.test") + "?to=" + location
    with pytest.raises(DownloadRefusedError):
        await make(("images.test",)).fetch(url)
    assert image_server.hits == ["/redirect-to"]  # nothing fetched after the redirect


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_every_redirect_code_is_followed_and_checked_again(
    code: int, make: MakeDownloader, image_server: ImageServer
):
    d = make(("images.test",))
    hop = image_server.url(f"/redirect-with/{code}", "images.test")
    allowed = image_server.url("/red.png", "images.test")
    assert await d.fetch(f"{hop}?to={allowed}") == RED_PNG
    assert image_server.hits == [f"/redirect-with/{code}", "/red.png"]
    internal = f"http://127.0.0.1:{image_server.port}/red.png"  # not covered by the name
    with pytest.raises(DownloadRefusedError, match="not allowed"):
        await d.fetch(f"{hop}?to={internal}")
    assert image_server.hits == [f"/redirect-with/{code}", "/red.png", f"/redirect-with/{code}"]


@pytest.mark.parametrize("location", ["http://[::1", "http://xn--zz/x.png", "http://a b/"])
async def test_a_broken_redirect_location_is_refused(
    location: str, make: MakeDownloader, image_server: ImageServer
):
    hop = image_server.url("/redirect-with/302", "images.test")
    with pytest.raises(DownloadRefusedError):
        await make(("images.test",)).fetch(f"{hop}?to={location}")


async def test_a_download_larger_than_the_memory_budget_is_a_413(
    make: MakeDownloader, image_server: ImageServer
):
    d = make(("images.test",), max_bytes=300 * 1024, budget=150 * 1024)
    with pytest.raises(PayloadTooLargeError, match="memory budget"):
        await d.fetch(image_server.url("/big.bin", "images.test"))  # 200 KiB, declared


@pytest.mark.parametrize("path", ["/big.bin", "/chunked-big"])
async def test_a_download_that_does_not_fit_now_is_a_503(
    path: str, make: MakeDownloader, image_server: ImageServer
):
    d = make(("images.test",), max_bytes=300 * 1024, budget=300 * 1024)
    with d.budget.hold(200 * 1024, "another request"):
        with pytest.raises(OverloadedError) as refused:
            await d.fetch(image_server.url(path, "images.test"))
        assert refused.value.status == 503 and refused.value.reason == "memory"
    assert d.budget.reserved == 0
    assert len(await d.fetch(image_server.url(path, "images.test"))) == 200 * 1024


async def test_size_cap_uses_content_length(make: MakeDownloader, image_server: ImageServer):
    with pytest.raises(PayloadTooLargeError):
        await make(("images.test",)).fetch(image_server.url("/big.bin", "images.test"))


async def test_size_cap_holds_while_streaming(make: MakeDownloader, image_server: ImageServer):
    with pytest.raises(PayloadTooLargeError):
        await make(("images.test",)).fetch(image_server.url("/chunked-big", "images.test"))


async def test_gzip_is_not_inflated(make: MakeDownloader, image_server: ImageServer):
    body = await make(("images.test",)).fetch(image_server.url("/gzip.png", "images.test"))
    assert body != RED_PNG and body[:2] == b"\x1f\x8b"  # raw gzip: a bomb cannot expand


@pytest.mark.parametrize("path", ["/trickle", "/slow-headers"])
async def test_total_timeout(path: str, make: MakeDownloader, image_server: ImageServer):
    with pytest.raises(UpstreamTimeoutError):
        await make(("images.test",), timeout=0.3).fetch(image_server.url(path, "images.test"))


async def test_one_deadline_covers_all_redirects(make: MakeDownloader, image_server: ImageServer):
    # Three hops of 0.2 s each: no single request is slow, the download as a whole is.
    with pytest.raises(UpstreamTimeoutError):
        await make(("images.test",), timeout=0.5).fetch(
            image_server.url("/slow-redirect/3", "images.test")
        )


async def test_proxy_environment_is_ignored(
    make: MakeDownloader, image_server: ImageServer, monkeypatch: pytest.MonkeyPatch
):
    """A proxy would connect on our behalf to whatever the name resolves to, unchecked."""
    proxy = await ImageServer().start()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        body = await make(("images.test",)).fetch(image_server.url("/red.png", "images.test"))
        assert body == RED_PNG
        assert proxy.hits == [] and image_server.hits == ["/red.png"]
    finally:
        await proxy.stop()


async def test_upstream_errors_are_bad_requests(make: MakeDownloader, image_server: ImageServer):
    d = make(("images.test",))
    with pytest.raises(DownloadRefusedError, match="HTTP 404"):
        await d.fetch(image_server.url("/status/404", "images.test"))
    with pytest.raises(DownloadRefusedError, match="resolve"):
        await d.fetch("http://unknown.example/x.png")


def _certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subject = ["-subj", "/CN=images.test", "-addext", "subjectAltName=DNS:images.test"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            *subject,
            *files,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


async def test_https_pins_the_checked_address_but_verifies_the_name(
    make: MakeDownloader, tmp_path: Path
):
    cert, key = _certificate(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda _sock, name, _ctx: sni.append(name)
    server = await ImageServer().start(ssl_context=server_ctx)
    try:
        client_ctx = ssl.create_default_context(cafile=str(cert))
        d = make(("images.test", "127.0.0.1/32"), ssl_context=client_ctx)
        assert await d.fetch(server.url("/red.png", "images.test", "https")) == RED_PNG
        assert sni == ["images.test"]
        assert server.hosts == [f"images.test:{server.port}"]
        # Same server by address: the certificate does not name it, so TLS must fail.
        with pytest.raises(DownloadRefusedError):
            await d.fetch(server.url("/red.png", "127.0.0.1", "https"))
    finally:
        await server.stop()
