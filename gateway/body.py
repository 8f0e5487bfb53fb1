"""Reading request bodies and downloads into memory: capped, reserved, and on a schedule.

Every byte kept is reserved in the memory budget as it arrives (a slow or stalled sender holds
only what it has sent), the total is capped, and the sender must keep a minimum rate after a
short grace period as well as finish before a deadline. Each chunk is copied at once into the
body's own buffer, sized from Content-Length (or the cap), so a body is in memory once.
Buffers above a few hundred KiB are anonymous memory maps: their pages exist only once written,
and go straight back to the system when the request ends, whatever the allocator keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mmap
from dataclasses import dataclass
from typing import Protocol

from gateway.errors import BadRequestError, PayloadTooLargeError, RequestTimeoutError
from gateway.memory import Reservation

CHUNK = 64 * 1024
# The first second of a body is free of the rate rule (connection set-up, TCP slow start).
RATE_GRACE_SECONDS = 1.0
MAX_URL_LENGTH = 8192


class Chunks(Protocol):
    """A body as read_chunk(n) -> bytes, b"" at the end (aiohttp's StreamReader, a part)."""

    async def read_chunk(self, size: int = ...) -> bytes: ...


class StreamChunks:
    """An aiohttp StreamReader (request.content, response.content) as Chunks."""

    def __init__(self, stream: _Readable) -> None:
        self._stream = stream

    async def read_chunk(self, size: int = CHUNK) -> bytes:
        return await self._stream.read(size)

    def read_buffered(self, size: int = CHUNK) -> bytes | None:
        """What has arrived already, without waiting: b"" at the end, None if nothing yet."""
        stream = self._stream
        if stream.at_eof():
            return b""
        return stream.read_nowait(size) or None


class _Readable(Protocol):
    async def read(self, n: int = ...) -> bytes: ...

    def read_nowait(self, n: int = ...) -> bytes: ...

    def at_eof(self) -> bool: ...


@dataclass(frozen=True)
class Schedule:
    """When a body must be complete, and the slowest rate tolerated on the way."""

    deadline: float  # loop time
    min_rate: int = 0  # bytes per second after the grace period; 0 = no rate rule
    started: float = 0.0  # loop time the body started

    def next_deadline(self, received: int) -> float:
        """The latest time the next chunk may arrive: the deadline, or sooner if too slow."""
        if not self.min_rate:
            return self.deadline
        on_schedule = self.started + RATE_GRACE_SECONDS + received / self.min_rate
        return min(self.deadline, on_schedule)


class Body:
    """A request body or download: one buffer of fixed capacity, filled chunk by chunk."""

    SMALL = 256 * 1024  # below this a heap buffer, reused by the allocator, costs less

    def __init__(self, capacity: int, what: str = "body") -> None:
        self.capacity = capacity
        self.what = what
        self.size = 0
        self._buffer: bytearray | mmap.mmap = (
            bytearray(capacity) if capacity <= self.SMALL else _private_map(max(1, capacity))
        )

    def check_room(self, nbytes: int) -> None:
        if self.size + nbytes > self.capacity:
            raise PayloadTooLargeError(f"{self.what} is more than {self.capacity} bytes")

    def append(self, chunk: bytes) -> None:
        self.check_room(len(chunk))
        end = self.size + len(chunk)
        self._buffer[self.size : end] = chunk
        self.size = end

    def view(self) -> memoryview:
        """The bytes received, without a copy. Release the view before close()."""
        return memoryview(self._buffer)[: self.size]

    def bytes(self) -> bytes:
        return bytes(self._buffer[: self.size])

    def close(self) -> None:
        buffer = self._buffer
        self._buffer = bytearray()
        if isinstance(buffer, mmap.mmap):
            # Unmapped now, not when the garbage collector gets to it; if a view still
            # exists, the mapping goes with the last one.
            with contextlib.suppress(BufferError):
                buffer.close()

    def __enter__(self) -> Body:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _private_map(size: int) -> mmap.mmap:
    """Anonymous private pages: mmap(-1, n) alone maps shared memory (shmem), whose page
    faults cost about a third more, for a buffer no other process ever sees."""
    private = getattr(mmap, "MAP_PRIVATE", None)
    anonymous = getattr(mmap, "MAP_ANONYMOUS", None)
    if private is None or anonymous is None:  # not a POSIX system
        return mmap.mmap(-1, size)
    return mmap.mmap(-1, size, flags=private | anonymous)


class TooSlowError(Exception):
    """The sender fell behind its Schedule (the caller picks 408 or 504)."""

    def __init__(self, received: int, rate_rule: bool) -> None:
        super().__init__(received)
        self.received = received
        self.rate_rule = rate_rule


async def read_into(
    source: Chunks,
    *,
    limit: int,
    reservation: Reservation,
    schedule: Schedule,
    declared: int | None = None,
    what: str = "body",
) -> Body:
    """The whole body in one buffer; each chunk reserved before it is kept."""
    body = Body(min(limit, declared) if declared is not None else limit, what)
    try:
        await _fill(body, source, reservation, schedule)
    except BaseException:
        body.close()
        raise
    return body


async def _fill(body: Body, source: Chunks, reservation: Reservation, schedule: Schedule) -> None:
    loop = asyncio.get_running_loop()
    # Bytes that have arrived already are taken without a timer: only waiting needs one.
    buffered = source.read_buffered if isinstance(source, StreamChunks) else None
    while True:
        chunk = buffered(CHUNK) if buffered is not None else None
        if chunk is None:
            deadline = schedule.next_deadline(body.size)
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await source.read_chunk(CHUNK)
            except TimeoutError:
                raise TooSlowError(body.size, deadline < schedule.deadline) from None
        if not chunk:
            return
        body.check_room(len(chunk))  # Content-Length may be absent (chunked) or lie: 413
        reservation.grow(len(chunk))  # 503 when the budget is spent: the chunk is dropped
        body.append(chunk)
        if loop.time() > schedule.deadline:
            raise TooSlowError(body.size, False)


def upload_timeout(exc: TooSlowError, schedule: Schedule, seconds: float) -> RequestTimeoutError:
    if exc.rate_rule:
        return RequestTimeoutError(
            f"request body arrived slower than {schedule.min_rate} bytes/s "
            f"({exc.received} bytes received)"
        )
    return RequestTimeoutError(f"request body took longer than {seconds:g} s")


def url_from_json(body: bytes) -> str:
    """The "url" of a JSON object body; every way JSON can be wrong is a 400."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, nesting, huge numbers
        raise BadRequestError(f"body is not valid JSON: {_short(exc)}") from None
    url = payload.get("url") if isinstance(payload, dict) else None
    if not isinstance(url, str) or not url.strip():
        raise BadRequestError('JSON body must be an object with a "url" string')
    if len(url) > MAX_URL_LENGTH:
        raise BadRequestError(f"url is longer than {MAX_URL_LENGTH} characters")
    return url


def _short(exc: BaseException) -> str:
    return str(exc)[:200] or type(exc).__name__
