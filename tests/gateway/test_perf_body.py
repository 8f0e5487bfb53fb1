"""Body reading on its fast paths: buffered bytes without timers, private anonymous maps.

The guards must hold on the fast path too: the cap, the reservation of every byte, the rate
rule and the deadline as soon as the reader has to wait.
"""

from __future__ import annotations

import asyncio
import ctypes
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import streams

from gateway.body import Body, Schedule, StreamChunks, TooSlowError, read_into
from gateway.errors import OverloadedError, PayloadTooLargeError
from gateway.memory import MemoryBudget

pytestmark = pytest.mark.asyncio


class _Protocol:
    """What aiohttp's StreamReader calls on its protocol for flow control."""

    _reading_paused = False
    connected = True

    def pause_reading(self, **_: Any) -> None:
        self._reading_paused = True

    def resume_reading(self, **_: Any) -> None:
        self._reading_paused = False


def _stream(*chunks: bytes, eof: bool = True) -> streams.StreamReader:
    stream = streams.StreamReader(_Protocol(), 2**16, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    for chunk in chunks:
        stream.feed_data(chunk)
    if eof:
        stream.feed_eof()
    return stream


async def test_read_buffered_takes_what_arrived_and_never_waits() -> None:
    stream = _stream(b"abc", b"defg", eof=False)
    chunks = StreamChunks(stream)
    assert chunks.read_buffered(5) == b"abcde"
    assert chunks.read_buffered(5) == b"fg"
    assert chunks.read_buffered(5) is None  # nothing yet: the caller waits, with a timer
    stream.feed_eof()
    assert chunks.read_buffered(5) == b""  # the end


async def test_a_buffered_body_is_read_whole_reserved_and_capped() -> None:
    data = bytes(range(256)) * 700  # 179,200 bytes in three chunks
    stream = _stream(data[:65536], data[65536:131072], data[131072:])
    budget = MemoryBudget(1 << 20)
    loop = asyncio.get_running_loop()
    schedule = Schedule(loop.time() + 10, min_rate=1000, started=loop.time())
    with budget.reservation("body") as memory:
        body = await read_into(
            StreamChunks(stream), limit=1 << 20, reservation=memory, schedule=schedule
        )
        assert body.bytes() == data and memory.nbytes == len(data)
        body.close()
    with budget.reservation("body") as memory, pytest.raises(PayloadTooLargeError):
        await read_into(
            StreamChunks(_stream(data)), limit=1000, reservation=memory, schedule=schedule
        )
    with (
        budget.hold((1 << 20) - 100, "others"),
        budget.reservation("body") as memory,
        pytest.raises(OverloadedError),
    ):
        await read_into(
            StreamChunks(_stream(data)), limit=1 << 20, reservation=memory, schedule=schedule
        )
    assert budget.reserved == 0


async def test_the_rate_rule_applies_as_soon_as_the_reader_waits() -> None:
    stream = _stream(b"x" * 100, eof=False)  # 100 bytes at once, then nothing
    loop = asyncio.get_running_loop()
    # Grace over already: the next byte is due now, at 1000 bytes/s.
    schedule = Schedule(loop.time() + 10, min_rate=1000, started=loop.time() - 5)
    with MemoryBudget(1 << 20).reservation("body") as memory, pytest.raises(TooSlowError) as slow:
        await read_into(StreamChunks(stream), limit=1 << 20, reservation=memory, schedule=schedule)
    assert slow.value.rate_rule is True and slow.value.received == 100


async def test_the_deadline_still_ends_a_body_that_is_always_buffered() -> None:
    stream = _stream(b"x" * 10, b"y" * 10)
    loop = asyncio.get_running_loop()
    schedule = Schedule(loop.time() - 1)  # already past
    with MemoryBudget(1 << 20).reservation("body") as memory, pytest.raises(TooSlowError) as slow:
        await read_into(StreamChunks(stream), limit=1 << 20, reservation=memory, schedule=schedule)
    assert slow.value.rate_rule is False


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/maps")
async def test_big_bodies_are_private_anonymous_memory_not_shared_memory() -> None:
    body = Body(Body.SMALL * 4)
    body.append(b"z" * 10)
    with body.view() as view:
        address = ctypes.addressof(ctypes.c_char.from_buffer(view))
    for line in Path("/proc/self/maps").read_text().splitlines():
        span, perms, *rest = line.split()
        start, end = (int(x, 16) for x in span.split("-"))
        if start <= address < end:
            assert perms.endswith("p"), line  # private, not "s" (shared, shmem-backed)
            assert not any("zero" in part for part in rest), line  # not /dev/zero (deleted)
            break
    else:
        pytest.fail("mapping not found")
    body.close()
