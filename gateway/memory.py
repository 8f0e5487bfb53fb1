"""Memory admission: how much the container may use, and a budget that requests reserve from.

The budget is a share (GATEWAY_MEMORY_BUDGET_PERCENT) of the container's memory limit, which
comes from GATEWAY_MEMORY_LIMIT_BYTES or else the cgroup (v2 `memory.max`, v1
`memory.limit_in_bytes`). Request bodies and downloads reserve their bytes as they arrive, a
decode reserves its pixels once the image header is read, a model call its request: whatever
does not fit is refused (503) instead of allocated, so the sum of what requests hold cannot
outgrow the pod. The rest of the limit holds the interpreter, libraries, connection buffers and
allocator slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import OverloadedError, PayloadTooLargeError

MiB = 1024 * 1024
# Without any limit (a laptop, a container without one): plan as if the pod had 1 GiB.
FALLBACK_LIMIT = 1024 * MiB
# cgroup v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages), not as "max".
_UNLIMITED = 1 << 60
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class MemoryLimit:
    bytes: int
    source: str  # "GATEWAY_MEMORY_LIMIT_BYTES", the cgroup file read, or "fallback"


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.isdigit():  # "max" (v2: no limit), or anything unexpected
        return None
    value = int(text)
    return value if 0 < value < _UNLIMITED else None


def _own_cgroup_paths(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """This process's cgroup path in the v2 hierarchy and in v1's memory controller."""
    v2 = v1 = None
    try:
        lines = proc_cgroup.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v2, v1


def _candidates(directory: Path, own: str | None) -> Iterator[Path]:
    """The cgroup's own directory and every parent up to the root: the tightest limit wins."""
    if own:
        current = directory / own.lstrip("/")
        while current != directory and directory in current.parents:
            yield current
            current = current.parent
    yield directory


def cgroup_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> MemoryLimit | None:
    """The container's memory limit from cgroup v2 or v1, or None when there is none."""
    v2, v1 = _own_cgroup_paths(proc_cgroup)
    found: list[tuple[int, Path]] = []
    for directory, own, name in (
        (root, v2, "memory.max"),
        (root / "memory", v1, "memory.limit_in_bytes"),
    ):
        for candidate in _candidates(directory, own):
            limit = _read_limit(candidate / name)
            if limit is not None:
                found.append((limit, candidate / name))
    if not found:
        return None
    limit, path = min(found)
    return MemoryLimit(limit, str(path))


def memory_limit(
    configured: int, root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
) -> MemoryLimit:
    """GATEWAY_MEMORY_LIMIT_BYTES if set (not 0), else the cgroup's limit, else the fallback."""
    if configured:
        return MemoryLimit(configured, "GATEWAY_MEMORY_LIMIT_BYTES")
    return cgroup_limit(root, proc_cgroup) or MemoryLimit(FALLBACK_LIMIT, "fallback")


class MemoryBudget:
    """Bytes that requests may hold at once. Thread-safe: decode threads reserve pixels.

    A reservation either fits now or is refused now; nothing waits for memory, so a burst
    becomes fast 503s instead of a queue of buffers.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.reserved = 0
        self._lock = threading.Lock()

    @property
    def free(self) -> int:
        return self.total - self.reserved

    def check_fits(self, nbytes: int, what: str) -> None:
        """413 for what this replica could never hold, 503 for what does not fit right now."""
        if nbytes > self.total:
            raise PayloadTooLargeError(
                f"{what} needs {nbytes / MiB:.1f} MiB, more than this replica's memory budget "
                f"of {self.total / MiB:.0f} MiB"
            )
        if nbytes > self.free:
            raise _busy(what)

    def try_reserve(self, nbytes: int) -> bool:
        with self._lock:
            if self.reserved + nbytes > self.total:
                return False
            self.reserved += nbytes
            return True

    def release(self, nbytes: int) -> None:
        with self._lock:
            self.reserved -= nbytes

    @contextlib.contextmanager
    def hold(self, nbytes: int, what: str) -> Iterator[Reservation]:
        """Reserve nbytes for the block (413 if it can never fit, 503 if not now)."""
        reservation = Reservation(self, what)
        try:
            reservation.grow(nbytes)
            yield reservation
        finally:
            reservation.close()

    def reservation(self, what: str) -> Reservation:
        """An empty reservation to grow as data arrives; close() (or `with`) releases it."""
        return Reservation(self, what)


class Reservation:
    """Bytes held by one request; grows as a body arrives, released at once on close()."""

    def __init__(self, budget: MemoryBudget, what: str) -> None:
        self._budget = budget
        self.what = what
        self.nbytes = 0
        self._in_use_by: asyncio.Future[Any] | None = None

    def grow(self, nbytes: int) -> None:
        if nbytes <= 0:
            return
        if self.nbytes + nbytes > self._budget.total:
            self._budget.check_fits(self.nbytes + nbytes, self.what)  # raises 413
        if not self._budget.try_reserve(nbytes):
            raise _busy(self.what)
        self.nbytes += nbytes

    def check_room(self, nbytes: int) -> None:
        """Refuse now (413 never, 503 not now) what grow(nbytes) would refuse; reserve nothing."""
        if self.nbytes + nbytes > self._budget.total:
            self._budget.check_fits(self.nbytes + nbytes, self.what)
        if nbytes > self._budget.free:
            raise _busy(self.what)

    def shrink_to(self, nbytes: int) -> None:
        """Keep only nbytes reserved (what is still held after a step); never grows."""
        if self.nbytes > nbytes:
            self._budget.release(self.nbytes - nbytes)
            self.nbytes = nbytes

    def release_after(self, work: asyncio.Future[Any]) -> None:
        """Keep the bytes until `work` (a decode thread still using them) is done.

        A cancelled request (client gone) leaves its decode running: releasing at once would
        let new requests reserve memory that the thread still holds.
        """
        if not work.done():
            self._in_use_by = work
            work.add_done_callback(lambda _: self._release())

    def close(self) -> None:
        if self._in_use_by is None or self._in_use_by.done():
            self._release()

    def _release(self) -> None:
        if self.nbytes:
            self._budget.release(self.nbytes)
            self.nbytes = 0

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _busy(what: str) -> OverloadedError:
    return OverloadedError(
        f"gateway memory budget is in use ({what} does not fit now), retry shortly",
        reason="memory",
    )
