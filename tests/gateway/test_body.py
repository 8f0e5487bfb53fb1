"""Body buffers and their schedule: one copy per byte, reserved, capped, on time."""

from __future__ import annotations

import asyncio
import mmap

import pytest

from gateway.body import RATE_GRACE_SECONDS, Body, Schedule, TooSlowError, read_into, url_from_json
from gateway.errors import BadRequestError, OverloadedError, PayloadTooLargeError
from gateway.memory import MemoryBudget

pytestmark = pytest.mark.asyncio


class Chunks:
    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)

    async def read_chunk(self, size: int = 65536) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""


async def test_small_bodies_use_the_heap_and_big_ones_a_private_mapping() -> None:
    small, big = Body(Body.SMALL), Body(Body.SMALL + 1)
    assert isinstance(small._buffer, bytearray) and isinstance(big._buffer, mmap.mmap)
    for body in (small, big):
        body.append(b"abc")
        body.append(b"de")
        assert (body.size, body.bytes()) == (5, b"abcde")
        with body.view() as view:
            assert view.tobytes() == b"abcde"
        body.close()


async def test_closing_while_a_view_is_alive_does_not_raise() -> None:
    body = Body(1 << 20)
    body.append(b"x" * 10)
    view = body.view()
    body.close()  # the mapping goes when the view does
    assert view.tobytes() == b"x" * 10
    view.release()


async def test_a_body_cannot_outgrow_its_capacity() -> None:
    body = Body(4, "image")
    body.append(b"1234")
    with pytest.raises(PayloadTooLargeError, match="image is more than 4 bytes"):
        body.append(b"5")


async def test_read_into_reserves_every_byte_and_releases_on_failure() -> None:
    budget = MemoryBudget(10)
    schedule = Schedule(deadline=float("inf"))
    with budget.reservation("body") as memory:
        body = await read_into(Chunks(b"12345", b"678"), limit=100, reservation=memory,
                               schedule=schedule)  # fmt: skip
        assert (body.bytes(), memory.nbytes) == (b"12345678", 8)
        body.close()
    assert budget.reserved == 0
    with (
        budget.hold(5, "another request"),
        budget.reservation("body") as memory,
        pytest.raises(OverloadedError),
    ):
        await read_into(Chunks(b"123", b"456"), limit=100, reservation=memory, schedule=schedule)
    assert budget.reserved == 0
    with budget.reservation("body") as memory, pytest.raises(PayloadTooLargeError):
        await read_into(Chunks(b"123", b"456"), limit=5, reservation=memory, schedule=schedule)


async def test_the_schedule_allows_the_grace_then_the_minimum_rate() -> None:
    schedule = Schedule(deadline=100.0, min_rate=1000, started=10.0)
    assert schedule.next_deadline(0) == 10.0 + RATE_GRACE_SECONDS
    assert schedule.next_deadline(5000) == 10.0 + RATE_GRACE_SECONDS + 5.0
    assert schedule.next_deadline(10**9) == 100.0  # never past the deadline
    assert Schedule(deadline=50.0).next_deadline(0) == 50.0  # no rate rule


async def test_a_stalled_sender_is_too_slow() -> None:
    class Stalled:
        async def read_chunk(self, size: int = 65536) -> bytes:
            await asyncio.sleep(10)
            return b""

    loop = asyncio.get_running_loop()
    schedule = Schedule(deadline=loop.time() + 0.05)
    with MemoryBudget(10).reservation("body") as memory, pytest.raises(TooSlowError) as slow:
        await read_into(Stalled(), limit=10, reservation=memory, schedule=schedule)
    assert slow.value.rate_rule is False and slow.value.received == 0


@pytest.mark.parametrize(
    "body",
    [b"[" * 5000 + b"]" * 5000, b"\xff", b'{"url": 1}', b"{}", b'{"url": "  "}', b"1" * 5000],
)
async def test_url_from_json_refuses_with_a_400(body: bytes) -> None:
    with pytest.raises(BadRequestError):
        url_from_json(body)
