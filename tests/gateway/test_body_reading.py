"""Reading a body, exactly: the buffer's capacity from Content-Length or the cap, what arrived
already taken without waiting, the deadline and the rate rule, the 408 messages, and the JSON
body's "url" with its bounds and messages."""

from __future__ import annotations

import asyncio
import ctypes
import mmap
from pathlib import Path
from typing import Any

import pytest

from gateway.body import (
    CHUNK,
    MAX_URL_LENGTH,
    RATE_GRACE_SECONDS,
    Body,
    Schedule,
    StreamChunks,
    TooSlowError,
    read_into,
    upload_timeout,
    url_from_json,
)
from gateway.errors import BadRequestError, PayloadTooLargeError
from gateway.memory import MemoryBudget

pytestmark = pytest.mark.asyncio
NEVER = Schedule(deadline=float("inf"))


class Chunks:
    """read_chunk() hands out the chunks without waiting, then b""; records the sizes asked."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.sizes: list[int] = []

    async def read_chunk(self, size: int = CHUNK) -> bytes:
        self.sizes.append(size)
        return self.chunks.pop(0) if self.chunks else b""


class Stream:
    """An aiohttp StreamReader's surface: what has arrived, then what arrives on read()."""

    def __init__(self, arrived: list[bytes], later: list[bytes], eof: bool = False) -> None:
        self.arrived, self.later, self.eof, self.reads = arrived, later, eof, 0

    async def read(self, n: int = -1) -> bytes:
        self.reads += 1
        return self.later.pop(0) if self.later else b""

    def read_nowait(self, n: int = -1) -> bytes:
        return self.arrived.pop(0)[:n] if self.arrived else b""

    def at_eof(self) -> bool:
        return self.eof and not self.arrived


class Stalled:
    async def read_chunk(self, size: int = CHUNK) -> bytes:
        await asyncio.sleep(30)
        return b""


async def read(source: Any, limit: int = 100, **kwargs: Any) -> Body:
    with MemoryBudget(1000).reservation("body") as memory:
        return await read_into(source, limit=limit, reservation=memory, **kwargs)


async def test_the_buffer_holds_what_content_length_declares() -> None:
    body = await read(Chunks(b"12345"), limit=100, schedule=NEVER, declared=5)
    assert (body.capacity, body.bytes()) == (5, b"12345")
    with pytest.raises(PayloadTooLargeError) as lied:
        await read(Chunks(b"123456"), limit=100, schedule=NEVER, declared=5)
    assert lied.value.message == "body is more than 5 bytes"
    with pytest.raises(PayloadTooLargeError) as empty:
        await read(Chunks(b"1"), limit=100, schedule=NEVER, declared=0)
    assert empty.value.message == "body is more than 0 bytes"


async def test_the_cap_holds_without_or_above_a_declared_length() -> None:
    assert (await read(Chunks(b"12", b"34"), limit=4, schedule=NEVER)).capacity == 4
    assert (await read(Chunks(b"1"), limit=4, schedule=NEVER, declared=400)).capacity == 4
    with pytest.raises(PayloadTooLargeError) as capped:
        await read(Chunks(b"12", b"345"), limit=4, schedule=NEVER, what="image")
    assert capped.value.message == "image is more than 4 bytes"


async def test_chunks_are_asked_for_in_chunk_sizes() -> None:
    source = Chunks(b"ab", b"cd")
    body = await read(source, schedule=NEVER)
    assert (body.bytes(), source.sizes) == (b"abcd", [CHUNK, CHUNK, CHUNK])
    assert CHUNK == 64 * 1024


async def test_what_has_arrived_is_taken_without_waiting() -> None:
    stream = Stream(arrived=[b"abc", b"def"], later=[b"gh"])
    body = await read(StreamChunks(stream), schedule=NEVER)
    assert (body.bytes(), stream.reads) == (b"abcdefgh", 2)


async def test_the_end_of_a_stream_that_has_arrived_whole() -> None:
    stream = Stream(arrived=[b"abc"], later=[], eof=True)
    chunks = StreamChunks(stream)
    assert chunks.read_buffered() == b"abc"
    assert chunks.read_buffered() == b""
    idle = StreamChunks(Stream(arrived=[], later=[b"x"]))
    assert idle.read_buffered() is None
    assert await idle.read_chunk() == b"x"
    body = await read(StreamChunks(Stream([b"abc"], [], eof=True)), schedule=NEVER)
    assert body.bytes() == b"abc"


async def test_read_buffered_takes_at_most_the_size_asked() -> None:
    chunks = StreamChunks(Stream(arrived=[b"abcdef"], later=[]))
    assert chunks.read_buffered(4) == b"abcd"


async def test_a_chunk_that_arrives_after_the_deadline_is_too_late() -> None:
    past = Schedule(deadline=asyncio.get_running_loop().time() - 1)
    with pytest.raises(TooSlowError) as late:
        await read(Chunks(b"12345", b"6"), schedule=past)
    assert (late.value.received, late.value.rate_rule) == (5, False)
    assert late.value.args == (5,)


async def test_a_stall_past_the_deadline_is_not_the_rate_rule() -> None:
    loop = asyncio.get_running_loop()
    schedule = Schedule(deadline=loop.time() - 1, min_rate=1000, started=loop.time())
    with pytest.raises(TooSlowError) as slow:
        await read(Stalled(), schedule=schedule)
    assert (slow.value.received, slow.value.rate_rule) == (0, False)


async def test_a_sender_behind_the_minimum_rate_breaks_the_rate_rule() -> None:
    loop = asyncio.get_running_loop()
    schedule = Schedule(deadline=loop.time() + 60, min_rate=1000, started=loop.time() - 60)
    with pytest.raises(TooSlowError) as slow:
        await read(Stalled(), schedule=schedule)
    assert (slow.value.received, slow.value.rate_rule) == (0, True)


async def test_the_schedule_exactly() -> None:
    schedule = Schedule(deadline=100.0, min_rate=1000, started=10.0)
    assert RATE_GRACE_SECONDS == 1.0
    assert schedule.next_deadline(0) == 11.0
    assert schedule.next_deadline(500) == 11.5
    assert schedule.next_deadline(89_000) == 100.0
    assert schedule.next_deadline(88_000) == 99.0
    assert Schedule(deadline=7.0, started=1.0).next_deadline(10**9) == 7.0
    assert (Schedule(1.0).min_rate, Schedule(1.0).started) == (0, 0.0)


async def test_the_408_says_which_rule_was_broken() -> None:
    schedule = Schedule(deadline=1.0, min_rate=16384)
    rate = upload_timeout(TooSlowError(5, True), schedule, 10.0)
    assert (rate.status, rate.message) == (
        408,
        "request body arrived slower than 16384 bytes/s (5 bytes received)",
    )
    assert upload_timeout(TooSlowError(5, False), schedule, 10.0).message == (
        "request body took longer than 10 s"
    )
    assert upload_timeout(TooSlowError(0, False), schedule, 2.5).message == (
        "request body took longer than 2.5 s"
    )


async def test_small_bodies_fill_a_heap_buffer_exactly() -> None:
    body = Body(3, "image")
    assert (body.capacity, body.what, body.size) == (3, "image", 0)
    body.append(b"ab")
    body.check_room(1)
    body.append(b"c")
    assert (body.size, body.bytes(), body.view().tobytes()) == (3, b"abc", b"abc")
    with pytest.raises(PayloadTooLargeError) as full:
        body.check_room(1)
    assert full.value.message == "image is more than 3 bytes"
    with Body(0) as empty:
        assert (empty.bytes(), empty.capacity) == (b"", 0)
        with pytest.raises(PayloadTooLargeError) as full_already:
            empty.append(b"x")
        assert full_already.value.message == "body is more than 0 bytes"


def mapping_of(buffer: mmap.mmap) -> str:
    """The /proc/self/maps line of the mapping that holds this buffer."""
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    for line in Path("/proc/self/maps").read_text().splitlines():
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        if start <= address < end:
            return line
    raise AssertionError("no mapping")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
async def test_big_bodies_are_private_anonymous_memory_released_on_close() -> None:
    body = Body(Body.SMALL + 1)
    buffer = body._buffer
    assert isinstance(buffer, mmap.mmap) and len(buffer) == Body.SMALL + 1
    line = mapping_of(buffer)
    assert line.split()[1] == "rw-p"  # private, not shared memory
    body.append(b"x" * 10)
    assert body.bytes() == b"x" * 10
    body.close()
    assert buffer.closed and body.bytes() == b""


async def test_a_body_closed_twice_or_with_a_live_view() -> None:
    body = Body(Body.SMALL * 2)
    body.append(b"abc")
    view = body.view()
    body.close()
    body.close()
    assert view.tobytes() == b"abc"
    view.release()


# --- the JSON body -------------------------------------------------------------------------


async def test_the_url_of_a_json_object() -> None:
    assert url_from_json(b'{"url": "http://example.com/a.jpg"}') == "http://example.com/a.jpg"
    assert url_from_json(b'{"url": " x ", "other": 1}') == " x "
    longest = "h" * MAX_URL_LENGTH
    assert url_from_json(f'{{"url": "{longest}"}}'.encode()) == longest
    assert MAX_URL_LENGTH == 8192


@pytest.mark.parametrize(
    "body", [b"{}", b"[]", b'"http://x"', b'{"url": 1}', b'{"url": null}', b'{"url": ""}',
             b'{"url": " \\t\\n"}', b'{"URL": "http://x"}', b"null", b'[{"url": "http://x"}]'],
)  # fmt: skip
async def test_a_json_body_without_a_url_string(body: bytes) -> None:
    with pytest.raises(BadRequestError) as refused:
        url_from_json(body)
    assert (refused.value.status, refused.value.message) == (
        400,
        'JSON body must be an object with a "url" string',
    )


async def test_a_url_longer_than_the_bound() -> None:
    with pytest.raises(BadRequestError) as refused:
        url_from_json(f'{{"url": "{"h" * (MAX_URL_LENGTH + 1)}"}}'.encode())
    assert refused.value.message == "url is longer than 8192 characters"


@pytest.mark.parametrize(
    ("body", "why"),
    [(b"{", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
     (b"", "Expecting value: line 1 column 1 (char 0)"),
     (b"\xff", "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
     (b"[" * 100_000, "maximum recursion depth exceeded while decoding a JSON array from a "
                      "unicode string")],
)  # fmt: skip
async def test_a_body_that_is_not_json(body: bytes, why: str) -> None:
    with pytest.raises(BadRequestError) as refused:
        url_from_json(body)
    assert refused.value.message == f"body is not valid JSON: {why}"


async def test_a_chunk_at_the_deadline_itself_is_on_time() -> None:
    loop = asyncio.get_running_loop()
    real_time = loop.time
    loop.time = lambda: 100.0  # type: ignore[method-assign]  # a clock that stands still
    try:
        stream = Stream(arrived=[b"abc"], later=[], eof=True)
        body = await read(StreamChunks(stream), schedule=Schedule(deadline=100.0))
        assert body.bytes() == b"abc"
        with pytest.raises(TooSlowError) as late:
            await read(StreamChunks(Stream([b"abc"], [], eof=True)), schedule=Schedule(99.999))
        assert (late.value.received, late.value.rate_rule) == (3, False)
    finally:
        loop.time = real_time  # type: ignore[method-assign]
