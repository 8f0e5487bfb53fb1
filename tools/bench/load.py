"""Closed-loop load on one server: N clients, each sending its next request when the last one
answered; CPU time of the server's processes (all threads, all workers) read from /proc."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

TICKS = os.sysconf("SC_CLK_TCK")
# A refused client waits before its next try, as a client honouring Retry-After would (scaled
# down so the run stays short); without it, refusals would be a busy loop, not load.
REFUSED_PAUSE_SECONDS = 0.05
LOAD_GENERATOR = "load generator"


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(root: int) -> list[int]:
    """root and every descendant (gunicorn's workers), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(_stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, queue = [], [root]
    while queue:
        pid = queue.pop()
        tree.append(pid)
        queue.extend(children.get(pid, []))
    return tree


def cpu_seconds(root: int) -> float:
    """utime + stime of a process and its descendants (threads included)."""
    total = 0
    for pid in process_tree(root):
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


@dataclass
class Result:
    server: str
    image: str
    clients: int
    seconds: float
    cpu_s: float
    latencies_ms: list[float] = field(default_factory=list)
    refused: int = 0  # 503 with Retry-After: the gateway shedding load, by design
    errors: int = 0  # anything else that is not a 200
    # CPU seconds of the benchmark's own processes meanwhile (fake TF Serving, image server,
    # load generator): they share the machine with the server being measured.
    harness_cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.answered / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_s / max(1, self.answered) * 1000

    def harness_ms_per_request(self, name: str) -> float:
        return self.harness_cpu_s.get(name, math.nan) / max(1, self.answered) * 1000


async def drive(
    server: str, image: str, url: str, payload: dict[str, Any] | bytes, *, clients: int,
    seconds: float, pid: int, harness: dict[str, int] | None = None,
) -> Result:  # fmt: skip
    """Warm up (connections, pools), then measure `seconds` of closed-loop load.

    payload: a JSON body ({"url": ...}), or the image's bytes to upload. harness: name -> pid
    of the benchmark's other processes, whose CPU is recorded too; "load generator" is this
    process (only the load runs in it meanwhile).
    """
    others = dict(harness or {})
    if isinstance(payload, bytes):
        send: dict[str, Any] = {"data": payload, "headers": {"Content-Type": "image/jpeg"}}
    else:
        send = {"json": payload}
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> tuple[int, str | None, float]:
            start = time.perf_counter()
            try:
                async with session.post(url, **send) as resp:
                    await resp.read()
                    status, retry = resp.status, resp.headers.get("Retry-After")
            except aiohttp.ClientError:
                status, retry = 0, None
            return status, retry, (time.perf_counter() - start) * 1000

        await asyncio.gather(*(one() for _ in range(clients)))
        result = Result(server, image, clients, seconds, 0.0)
        stop = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < stop:
                status, retry, ms = await one()
                if status == 200:
                    result.latencies_ms.append(ms)
                elif status == 503 and retry is not None:
                    result.refused += 1
                    await asyncio.sleep(REFUSED_PAUSE_SECONDS)
                else:
                    result.errors += 1

        before = {name: cpu_seconds(other) for name, other in others.items()}
        own0, cpu0, t0 = time.process_time(), cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        result.seconds = time.perf_counter() - t0
        result.cpu_s = cpu_seconds(pid) - cpu0
        result.harness_cpu_s = {name: cpu_seconds(other) - before[name] for name, other in
                                others.items()}  # fmt: skip
        result.harness_cpu_s[LOAD_GENERATOR] = time.process_time() - own0
    return result


def merged(parts: list[Result]) -> Result:
    """Several runs of one server and workload as one result."""
    first = parts[0]
    result = Result(first.server, first.image, first.clients, 0.0, 0.0)
    for part in parts:
        result.seconds += part.seconds
        result.cpu_s += part.cpu_s
        result.latencies_ms += part.latencies_ms
        result.refused += part.refused
        result.errors += part.errors
        for name, cpu in part.harness_cpu_s.items():
            result.harness_cpu_s[name] = result.harness_cpu_s.get(name, 0.0) + cpu
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError as exc:
            if getattr(exc, "code", None) is not None:  # an HTTP answer: it is up
                return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server behind {url} did not start") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
