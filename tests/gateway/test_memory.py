"""The memory budget: the container's limit from cgroups, reservations, and refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from gateway.app import BUDGET
from gateway.errors import OverloadedError, PayloadTooLargeError
from gateway.memory import FALLBACK_LIMIT, MemoryBudget, cgroup_limit, memory_limit
from tests.gateway.client import post_image, until
from tests.gateway.rawhttp import RawClient, head
from tests.gateway.support import RED_PNG, RunningGateway, encode
from tools.fake_tfserving import FakeTFServing

pytestmark = pytest.mark.asyncio
Factory = Callable[..., Awaitable[RunningGateway]]
MiB = 1024 * 1024


def cgroups(tmp_path: Path, proc: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc_file = tmp_path / "proc-self-cgroup"
    proc_file.write_text(proc)
    return root, proc_file


async def test_cgroup_v2_limit_of_the_container(tmp_path: Path) -> None:
    root, proc = cgroups(tmp_path, "0::/\n", {"memory.max": "536870912\n"})
    limit = cgroup_limit(root, proc)
    assert limit is not None and limit.bytes == 512 * MiB
    assert limit.source == str(root / "memory.max")


async def test_cgroup_v2_takes_the_tightest_limit_up_the_tree(tmp_path: Path) -> None:
    root, proc = cgroups(
        tmp_path,
        "0::/kubepods/pod1/gateway\n",
        {
            "memory.max": "max\n",
            "kubepods/memory.max": "8589934592\n",
            "kubepods/pod1/memory.max": "1073741824\n",
            "kubepods/pod1/gateway/memory.max": "max\n",
        },
    )
    limit = cgroup_limit(root, proc)
    assert limit is not None and limit.bytes == 1024 * MiB


async def test_cgroup_v1_limit_and_its_unlimited_value(tmp_path: Path) -> None:
    root, proc = cgroups(
        tmp_path,
        "4:memory:/docker/abc\n0::/\n",
        {
            "memory/memory.limit_in_bytes": "9223372036854771712\n",  # v1's "no limit"
            "memory/docker/abc/memory.limit_in_bytes": "268435456\n",
        },
    )
    limit = cgroup_limit(root, proc)
    assert limit is not None and limit.bytes == 256 * MiB


@pytest.mark.parametrize("text", ["max\n", "9223372036854771712\n", "garbage", ""])
async def test_no_cgroup_limit_falls_back(tmp_path: Path, text: str) -> None:
    root, proc = cgroups(tmp_path, "0::/\n", {"memory.max": text})
    assert cgroup_limit(root, proc) is None
    assert memory_limit(0, root, proc).bytes == FALLBACK_LIMIT == 1024 * MiB
    assert memory_limit(0, root, proc).source == "fallback"


async def test_the_setting_overrides_the_cgroup(tmp_path: Path) -> None:
    root, proc = cgroups(tmp_path, "0::/\n", {"memory.max": "536870912\n"})
    limit = memory_limit(300 * MiB, root, proc)
    assert (limit.bytes, limit.source) == (300 * MiB, "GATEWAY_MEMORY_LIMIT_BYTES")


async def test_reservations_grow_refuse_and_release() -> None:
    budget = MemoryBudget(100)
    first = budget.reservation("a")
    first.grow(60)
    second = budget.reservation("b")
    with pytest.raises(OverloadedError) as busy:
        second.grow(41)  # fits the budget, not what is free now
    assert busy.value.status == 503 and busy.value.headers["Retry-After"] == "1"
    with pytest.raises(PayloadTooLargeError):
        second.grow(101)  # can never fit
    second.grow(40)
    assert (budget.reserved, budget.free) == (100, 0)
    first.shrink_to(10)
    assert budget.reserved == 50
    first.close()
    second.close()
    assert budget.reserved == 0


async def test_a_reservation_in_use_by_a_thread_is_released_when_the_work_ends() -> None:
    budget = MemoryBudget(100)
    work: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    memory = budget.reservation("decode")
    memory.grow(70)
    memory.release_after(work)
    memory.close()  # the request is gone (cancelled) but its decode still runs
    assert budget.reserved == 70
    work.set_result(None)
    await asyncio.sleep(0)
    assert budget.reserved == 0


async def held_requests(
    http: aiohttp.ClientSession, gw: RunningGateway, fake: FakeTFServing, n: int
) -> list[asyncio.Task[tuple[int, dict[str, object]]]]:
    """n predictions waiting in the model, started one by one (no two decodes at once)."""
    held = []
    for i in range(n):
        held.append(asyncio.create_task(post_image(http, gw, RED_PNG)))
        calls = i + 1
        await until(lambda: fake.predict_calls == calls)  # noqa: B023 - awaited right here
    return held


async def test_a_body_that_does_not_fit_now_is_refused_before_it_is_read(
    gateway_factory: Factory, http: aiohttp.ClientSession, fake_tfs: FakeTFServing
) -> None:
    # 64 MiB x 10 %: a 6.4 MiB budget. Four predictions held in the model keep ~1 MB each.
    gw = await gateway_factory(memory_limit_bytes=64 * MiB, memory_budget_percent=10)
    budget = gw.app[BUDGET]
    assert budget.total == 64 * MiB // 10
    hold = asyncio.Event()
    fake_tfs.behaviour.hold = hold
    held = await held_requests(http, gw, fake_tfs, 4)
    try:
        free = budget.free
        assert 0 < free < 3 * MiB
        client = await RawClient.connect(gw.base)
        await client.send(
            head("POST", "/predict", Content_Type="image/png", Content_Length=free + 1)
        )
        status, headers, body = await client.response(timeout=5)  # no body byte was sent
        client.close()
        assert status == 503 and headers["retry-after"] == "1"
        assert headers["connection"] == "close" and "memory" in body["error"]
    finally:
        hold.set()
        fake_tfs.behaviour.hold = None
    assert [status for status, _ in await asyncio.gather(*held)] == [200] * 4
    assert budget.reserved == 0
    assert (await post_image(http, gw, RED_PNG))[0] == 200


async def test_an_image_whose_decode_exceeds_the_whole_budget_is_a_413(
    gateway_factory: Factory, http: aiohttp.ClientSession
) -> None:
    gw = await gateway_factory(memory_limit_bytes=64 * MiB, memory_budget_percent=10)
    small_file = encode(Image.new("RGB", (2000, 1000)), "PNG")  # 8 MB decoded (4 B/pixel)
    assert len(small_file) < 100_000
    status, body = await post_image(http, gw, small_file)
    assert status == 413 and "memory budget" in body["error"], body
    assert gw.app[BUDGET].reserved == 0


async def test_a_declared_body_larger_than_the_budget_is_a_413(gateway_factory: Factory) -> None:
    gw = await gateway_factory(memory_limit_bytes=64 * MiB, memory_budget_percent=10)
    client = await RawClient.connect(gw.base)
    await client.send(head("POST", "/predict", Content_Type="image/png", Content_Length=8 * MiB))
    status, _, body = await client.response(timeout=5)
    client.close()
    assert status == 413 and "memory budget" in body["error"]
