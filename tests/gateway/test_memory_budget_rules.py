"""The memory budget's exact rules: which cgroup files give the limit (v2 and v1, up the tree,
the tightest wins), what counts as no limit, and the budget's edges: what fits exactly, what is
a 413 or a 503, with the messages a client reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.errors import OverloadedError, PayloadTooLargeError
from gateway.memory import FALLBACK_LIMIT, MemoryBudget, MemoryLimit, cgroup_limit, memory_limit

MiB = 1024 * 1024
BUSY = "gateway memory budget is in use ({} does not fit now), retry shortly"


def cgroups(tmp_path: Path, proc: str | None, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    root.mkdir()
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc_file = tmp_path / "proc-self-cgroup"
    if proc is not None:
        proc_file.write_text(proc)
    return root, proc_file


def limit_of(tmp_path: Path, proc: str | None, files: dict[str, str]) -> MemoryLimit | None:
    return cgroup_limit(*cgroups(tmp_path, proc, files))


def test_v2_own_directory(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    found = limit_of(tmp_path, "0::/pod/app\n", {"pod/app/memory.max": "1000\n"})
    assert found == MemoryLimit(1000, str(root / "pod/app/memory.max"))


def test_v2_the_tightest_of_the_tree_wins(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    files = {"memory.max": "500", "pod/memory.max": "300", "pod/app/memory.max": "400"}
    assert limit_of(tmp_path, "0::/pod/app\n", files) == MemoryLimit(
        300, str(root / "pod/memory.max")
    )


def test_v2_root_only_without_an_own_path(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    files = {"memory.max": "700", "pod/memory.max": "300"}
    assert limit_of(tmp_path, "0::/\n", files) == MemoryLimit(700, str(root / "memory.max"))


def test_v2_root_only_without_a_proc_file(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    files = {"memory.max": "700", "pod/memory.max": "300"}
    assert limit_of(tmp_path, None, files) == MemoryLimit(700, str(root / "memory.max"))


def test_v1_memory_controller_among_others(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    proc = "12:cpu,cpuacct:/other\n5:blkio,memory:/docker/abc\n1:name=systemd:/x\n"
    files = {
        "memory/docker/abc/memory.limit_in_bytes": "268435456\n",
        "memory/other/memory.limit_in_bytes": "1000",
        "memory.max": "max",
    }
    assert limit_of(tmp_path, proc, files) == MemoryLimit(
        256 * MiB, str(root / "memory/docker/abc/memory.limit_in_bytes")
    )


def test_v1_and_v2_both_present_the_smaller_wins(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    proc = "0::/a\n3:memory:/b\n"
    files = {"a/memory.max": "900", "memory/b/memory.limit_in_bytes": "800"}
    assert limit_of(tmp_path, proc, files) == MemoryLimit(
        800, str(root / "memory/b/memory.limit_in_bytes")
    )


def test_a_line_that_is_not_controller_and_path_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    proc = "garbage\n2:memory\n0::/a:b\n"  # the path itself may hold a colon
    files = {"a:b/memory.max": "600", "memory.max": "max"}
    assert limit_of(tmp_path, proc, files) == MemoryLimit(600, str(root / "a:b/memory.max"))


@pytest.mark.parametrize(
    "text", ["max", "0", "-5", "12.5", "1 2", "", str(1 << 60), str((1 << 60) + 1), "\xff"]
)
def test_values_that_are_no_limit(tmp_path: Path, text: str) -> None:
    assert limit_of(tmp_path, "0::/\n", {"memory.max": text}) is None


@pytest.mark.parametrize("text", ["1", str((1 << 60) - 1), " 42 \n"])
def test_the_extreme_limits_that_count(tmp_path: Path, text: str) -> None:
    found = limit_of(tmp_path, "0::/\n", {"memory.max": text})
    assert found is not None and found.bytes == int(text)


def test_a_file_that_is_not_text_is_no_limit(tmp_path: Path) -> None:
    root, proc = cgroups(tmp_path, "0::/\n", {})
    (root / "memory.max").write_bytes(b"\xff\xfe")
    assert cgroup_limit(root, proc) is None
    proc.write_bytes(b"\xff\xfe")
    (root / "memory.max").write_text("1000")
    # An unreadable own path: the root's file is still read.
    assert cgroup_limit(root, proc) == MemoryLimit(1000, str(root / "memory.max"))


def test_the_setting_then_the_cgroup_then_the_fallback(tmp_path: Path) -> None:
    root, proc = cgroups(
        tmp_path, "0::/pod\n", {"memory.max": "536870912", "pod/memory.max": "268435456"}
    )
    assert memory_limit(1, root, proc) == MemoryLimit(1, "GATEWAY_MEMORY_LIMIT_BYTES")
    assert memory_limit(0, root, proc) == MemoryLimit(256 * MiB, str(root / "pod/memory.max"))
    (root / "memory.max").write_text("max")
    (root / "pod/memory.max").write_text("max")
    assert memory_limit(0, root, proc) == MemoryLimit(FALLBACK_LIMIT, "fallback")
    assert 1024 * MiB == FALLBACK_LIMIT


def test_a_cgroup_path_starting_with_x(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    found = limit_of(tmp_path, "0::/XX/app\n", {"XX/app/memory.max": "1000", "memory.max": "max"})
    assert found == MemoryLimit(1000, str(root / "XX/app/memory.max"))


# --- the budget ----------------------------------------------------------------------------


def test_what_fits_exactly_is_reserved() -> None:
    budget = MemoryBudget(100)
    assert (budget.total, budget.reserved, budget.free) == (100, 0, 100)
    assert budget.try_reserve(100) is True
    assert budget.try_reserve(1) is False
    assert (budget.reserved, budget.free) == (100, 0)
    budget.release(30)
    assert (budget.reserved, budget.free) == (70, 30)
    assert budget.try_reserve(0) is True


def test_check_fits_says_never_or_not_now() -> None:
    budget = MemoryBudget(10 * MiB)
    budget.check_fits(10 * MiB, "image decode")
    with pytest.raises(PayloadTooLargeError) as never:
        budget.check_fits(10 * MiB + 1, "image decode")
    assert never.value.message == (
        "image decode needs 10.0 MiB, more than this replica's memory budget of 10 MiB"
    )
    budget.try_reserve(1)
    with pytest.raises(OverloadedError) as busy:
        budget.check_fits(10 * MiB, "request body")
    assert (busy.value.message, busy.value.reason) == (BUSY.format("request body"), "memory")
    assert (busy.value.status, busy.value.headers, busy.value.close_connection) == (
        503,
        {"Retry-After": "1"},
        True,
    )
    budget.check_fits(10 * MiB - 1, "request body")


def test_a_reservation_grows_to_the_whole_budget_and_no_further() -> None:
    budget = MemoryBudget(100)
    memory = budget.reservation("request body")
    assert (memory.what, memory.nbytes) == ("request body", 0)
    memory.grow(0)
    memory.grow(-5)
    assert (memory.nbytes, budget.reserved) == (0, 0)
    memory.grow(60)
    memory.grow(40)
    assert (memory.nbytes, budget.reserved) == (100, 100)
    with pytest.raises(PayloadTooLargeError) as never:
        memory.grow(1)
    assert never.value.message == (
        "request body needs 0.0 MiB, more than this replica's memory budget of 0 MiB"
    )
    assert (memory.nbytes, budget.reserved) == (100, 100)
    memory.close()
    assert (memory.nbytes, budget.reserved) == (0, 0)
    memory.close()
    assert budget.reserved == 0


def test_a_reservation_refused_now_keeps_what_it_had() -> None:
    budget = MemoryBudget(100)
    other = budget.reservation("other")
    other.grow(50)
    memory = budget.reservation("image decode")
    memory.grow(50)
    with pytest.raises(OverloadedError) as busy:
        memory.grow(1)
    assert busy.value.message == BUSY.format("image decode")
    assert (memory.nbytes, budget.reserved) == (50, 100)


def test_check_room_refuses_what_grow_would_and_reserves_nothing() -> None:
    budget = MemoryBudget(2 * MiB)
    memory = budget.reservation("image")
    memory.grow(MiB)
    memory.check_room(MiB)
    assert budget.reserved == MiB
    with pytest.raises(PayloadTooLargeError) as never:
        memory.check_room(MiB + 1)
    assert never.value.message == (
        "image needs 2.0 MiB, more than this replica's memory budget of 2 MiB"
    )
    other = budget.reservation("other")
    other.grow(1)
    with pytest.raises(OverloadedError) as busy:
        memory.check_room(MiB)
    assert busy.value.message == BUSY.format("image")
    memory.check_room(MiB - 1)
    assert budget.reserved == MiB + 1


def test_shrink_to_keeps_only_what_is_still_held() -> None:
    budget = MemoryBudget(100)
    memory = budget.reservation("request")
    memory.grow(80)
    memory.shrink_to(90)  # never grows
    assert (memory.nbytes, budget.reserved) == (80, 80)
    memory.shrink_to(80)
    assert (memory.nbytes, budget.reserved) == (80, 80)
    memory.shrink_to(30)
    assert (memory.nbytes, budget.reserved) == (30, 30)
    memory.shrink_to(0)
    assert (memory.nbytes, budget.reserved) == (0, 0)


def test_hold_reserves_for_the_block_and_refuses_before_it() -> None:
    budget = MemoryBudget(100)
    with budget.hold(70, "model call") as held:
        assert (held.what, held.nbytes, budget.reserved) == ("model call", 70, 70)
        with pytest.raises(OverloadedError) as busy, budget.hold(31, "model request"):
            pass
        assert busy.value.message == BUSY.format("model request")
        assert budget.reserved == 70
    assert budget.reserved == 0
    with pytest.raises(PayloadTooLargeError), budget.hold(101, "model call"):
        pass
    assert budget.reserved == 0


def test_a_reservation_as_a_context_releases_on_exit() -> None:
    budget = MemoryBudget(100)
    with budget.reservation("body") as memory:
        memory.grow(10)
        assert budget.reserved == 10
    assert (memory.nbytes, budget.reserved) == (0, 0)


@pytest.mark.asyncio
async def test_release_after_finished_work_releases_at_close() -> None:
    budget = MemoryBudget(100)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    memory = budget.reservation("decode")
    memory.grow(40)
    memory.release_after(done)
    memory.close()
    assert budget.reserved == 0


@pytest.mark.asyncio
async def test_release_after_pending_work_waits_for_it() -> None:
    budget = MemoryBudget(100)
    work: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    memory = budget.reservation("decode")
    memory.grow(40)
    memory.release_after(work)
    memory.close()
    assert budget.reserved == 40
    work.set_result(None)
    await asyncio.sleep(0)
    assert (memory.nbytes, budget.reserved) == (0, 0)
    memory.close()
    assert budget.reserved == 0
