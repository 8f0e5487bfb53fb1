"""Safe image downloads: http(s) only, checked addresses only, bounded size, time and redirects."""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
from yarl import URL

from gateway.errors import DownloadRefusedError, PayloadTooLargeError, UpstreamTimeoutError
from gateway.netguard import (
    AddressPolicy,
    AddressRefusedError,
    Lookup,
    SafeResolver,
    UnresolvableHostError,
)
from gateway.netguard import system_lookup as _system_lookup

REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK = 64 * 1024


class Downloader:
    """Create inside the running event loop; close() at shutdown."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        max_bytes: int,
        timeout: float,
        max_redirects: int,
        lookup: Lookup = _system_lookup,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._policy = policy
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._max_redirects = max_redirects
        connector = aiohttp.TCPConnector(
            resolver=SafeResolver(policy, lookup),
            use_dns_cache=False,  # every new connection re-checks what the name resolves to
            ssl=ssl_context if ssl_context is not None else True,
            limit=100,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,  # a proxy from the environment would bypass the address check
            auto_decompress=False,  # no gzip bombs: we count the bytes that arrive
            # fetch() enforces the real limit over all redirects; this is a backstop.
            timeout=aiohttp.ClientTimeout(total=timeout + 1),
            headers={"User-Agent": "tfserving-gateway", "Accept-Encoding": "identity"},
        )

    async def close(self) -> None:
        await self._session.close()

    def check_url(self, url: URL) -> None:
        if url.scheme not in ("http", "https"):
            raise DownloadRefusedError(f"only http and https URLs are allowed, not {url.scheme!r}")
        if not url.host:
            raise DownloadRefusedError("URL has no host")
        if url.user is not None or url.password is not None:
            raise DownloadRefusedError("URLs with credentials are not allowed")
        try:
            self._policy.check_url_host(url.host)
        except AddressRefusedError as exc:
            raise DownloadRefusedError(str(exc)) from None

    async def fetch(self, raw_url: str) -> bytes:
        try:
            url = URL(raw_url.strip())
        except (ValueError, TypeError) as exc:
            raise DownloadRefusedError(f"invalid URL: {exc}") from None
        try:
            async with asyncio.timeout(self._timeout):
                return await self._fetch(url)
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"image download took longer than {self._timeout:g} s"
            ) from None

    async def _fetch(self, url: URL) -> bytes:
        for _ in range(self._max_redirects + 1):
            self.check_url(url)
            try:
                async with self._session.get(url, allow_redirects=False) as resp:
                    if resp.status in REDIRECTS:
                        location = resp.headers.get("Location")
                        if not location:
                            raise DownloadRefusedError(f"redirect {resp.status} without Location")
                        url = _join(resp.url, location)
                        continue
                    if resp.status != 200:
                        raise DownloadRefusedError(f"image URL answered HTTP {resp.status}")
                    return await self._read(resp)
            except TimeoutError:
                raise  # aiohttp's timeouts are ClientErrors too: keep them a 504
            except (AddressRefusedError, UnresolvableHostError) as exc:
                raise DownloadRefusedError(str(exc)) from None
            except aiohttp.InvalidURL as exc:
                raise DownloadRefusedError(f"invalid URL: {exc}") from None
            except aiohttp.ClientError as exc:
                raise DownloadRefusedError(f"image download failed: {type(exc).__name__}") from None
        raise DownloadRefusedError(f"more than {self._max_redirects} redirects")

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        if resp.content_length is not None and resp.content_length > self._max_bytes:
            raise PayloadTooLargeError(
                f"image is {resp.content_length} bytes, more than {self._max_bytes}"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > self._max_bytes:  # also catches a lying or missing Content-Length
                raise PayloadTooLargeError(f"image is more than {self._max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _join(base: URL, location: str) -> URL:
    try:
        return base.join(URL(location))
    except (ValueError, TypeError) as exc:
        raise DownloadRefusedError(f"invalid redirect Location: {exc}") from None
