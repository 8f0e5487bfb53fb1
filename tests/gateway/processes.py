"""`python -m gateway` and `python -m tools.fake_tfserving` as real processes on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from config.paths import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway_env(**extra: str) -> dict[str, str]:
    """This environment without any gateway setting, on loopback, on free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "PORT"}
    env |= {
        "PORT": str(free_port()),
        "GATEWAY_METRICS_PORT": str(free_port()),
        "GATEWAY_BIND_HOST": "127.0.0.1",
    }
    return env | extra


def wait_healthy(proc: subprocess.Popen[bytes], port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                assert r.status == 200
                return
        except OSError:
            assert proc.poll() is None, "gateway exited early"
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


@contextmanager
def gateway_process(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A started, healthy `python -m gateway` (stdout and stderr kept for the test to read)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_healthy(proc, int(env["PORT"]))
        yield proc
    finally:
        stop(proc)


@contextmanager
def fake_processes(
    *args: tuple[str, ...],
) -> Iterator[list[tuple[subprocess.Popen[bytes], int]]]:
    """Fake TF Serving processes (one per argument tuple, started together) and their ports:
    each prints its port once it listens."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tools.fake_tfserving", "--port", "0", *extra],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for extra in args
    ]
    try:
        started = []
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip().isdigit(), f"fake TF Serving did not start: {line!r}"
            started.append((proc, int(line)))
        yield started
    finally:
        for proc in procs:
            stop(proc)
