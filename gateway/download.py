"""Safe image downloads: http(s) only, checked addresses only, bounded size, time and redirects."""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
from yarl import URL

from gateway.body import Body, Schedule, StreamChunks, TooSlowError, read_into
from gateway.errors import DownloadRefusedError, PayloadTooLargeError, UpstreamTimeoutError
from gateway.memory import Reservation
from gateway.netguard import (
    AddressPolicy,
    AddressRefusedError,
    Lookup,
    SafeResolver,
    UnresolvableHostError,
)
from gateway.netguard import system_lookup as _system_lookup

REDIRECTS = frozenset({301, 302, 303, 307, 308})
# What a hostile URL or answer can raise while being parsed, encoded (IDNA) or connected to.
_URL_ERRORS = (ValueError, TypeError, LookupError)


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
        try:
            scheme, host = url.scheme, url.host  # yarl decodes IDNA here: it can refuse
            credentials = url.user is not None or url.password is not None
        except _URL_ERRORS as exc:
            raise DownloadRefusedError(f"invalid URL: {_short(exc)}") from None
        if scheme not in ("http", "https"):
            raise DownloadRefusedError(f"only http and https URLs are allowed, not {scheme!r}")
        if not host:
            raise DownloadRefusedError("URL has no host")
        if credentials:
            raise DownloadRefusedError("URLs with credentials are not allowed")
        try:
            self._policy.check_url_host(host)
        except AddressRefusedError as exc:
            raise DownloadRefusedError(str(exc)) from None

    async def fetch(self, raw_url: str, memory: Reservation) -> Body:
        """The image at raw_url, its bytes reserved in `memory` as they arrive."""
        try:
            url = URL(raw_url.strip())
        except _URL_ERRORS as exc:
            raise DownloadRefusedError(f"invalid URL: {_short(exc)}") from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        try:
            async with asyncio.timeout_at(deadline):
                return await self._fetch(url, memory, Schedule(deadline, started=loop.time()))
        except (TimeoutError, TooSlowError):
            raise UpstreamTimeoutError(
                f"image download took longer than {self._timeout:g} s"
            ) from None

    async def _fetch(self, url: URL, memory: Reservation, schedule: Schedule) -> Body:
        for _ in range(self._max_redirects + 1):
            self.check_url(url)
            try:
                async with self._session.get(url, allow_redirects=False) as resp:
                    if resp.status in REDIRECTS:
                        url = _redirect_target(resp)
                        continue
                    if resp.status != 200:
                        raise DownloadRefusedError(f"image URL answered HTTP {resp.status}")
                    return await self._read(resp, memory, schedule)
            except TimeoutError:
                raise  # aiohttp's timeouts are ClientErrors too: keep them a 504
            except (AddressRefusedError, UnresolvableHostError) as exc:
                raise DownloadRefusedError(str(exc)) from None
            except aiohttp.ClientError as exc:
                raise DownloadRefusedError(f"image download failed: {type(exc).__name__}") from None
            except _URL_ERRORS as exc:  # a host name or header aiohttp cannot encode
                raise DownloadRefusedError(f"image download failed: {_short(exc)}") from None
        raise DownloadRefusedError(f"more than {self._max_redirects} redirects")

    async def _read(
        self, resp: aiohttp.ClientResponse, memory: Reservation, schedule: Schedule
    ) -> Body:
        declared = resp.content_length
        if declared is not None:
            if declared > self._max_bytes:
                raise PayloadTooLargeError(
                    f"image is {declared} bytes, more than {self._max_bytes}"
                )
            memory.check_room(declared)  # 503 before reading what cannot fit now
        return await read_into(
            StreamChunks(resp.content),
            limit=self._max_bytes,
            reservation=memory,
            schedule=schedule,
            declared=declared,
            what="image",
        )


def _redirect_target(resp: aiohttp.ClientResponse) -> URL:
    location = resp.headers.get("Location")
    if not location:
        raise DownloadRefusedError(f"redirect {resp.status} without Location")
    try:
        return resp.url.join(URL(location))
    except _URL_ERRORS as exc:
        raise DownloadRefusedError(f"invalid redirect Location: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:200]
