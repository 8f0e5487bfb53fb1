"""python -m gateway: validate settings, then serve on $PORT (default 9696) and /metrics on
$GATEWAY_METRICS_PORT (default 9697); drain on SIGTERM."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import signal
import sys

from gateway.app import create_app
from gateway.server import Server
from gateway.settings import Settings, SettingsError, load_settings

log = logging.getLogger("gateway")

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MiB = 1024 * 1024
# Buffers below this come from the heap and are reused; larger ones (bodies, decoded photos)
# are mmap()ed and returned to the system when freed, so RSS follows what requests hold.
MMAP_THRESHOLD = 4 * MiB
TRIM_THRESHOLD = 16 * MiB  # free heap kept for reuse before it is given back


def tune_malloc() -> bool:
    """Keep ~1 MB request buffers in the heap instead of fresh mmap()s, and no more.

    Every request allocates and frees several ~1 MB buffers (decoded image, float32 tensor,
    serialised request). glibc serves those with mmap and returns them on free, so each
    request faulted in ~500 fresh pages: about a third of the gateway's CPU. A 4 MiB mmap
    threshold keeps them in the heap; bigger buffers still go straight back to the system, so
    the memory budget (gateway/memory.py) sees the memory the process really holds. Same effect
    as MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in the environment, which win if set.
    """
    if {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then drain (gateway/server.py) and return."""
    app = create_app(settings)  # SettingsError: a bad API key file
    access = logging.getLogger("aiohttp.access") if settings.access_log else None
    # A client that gives up frees its in-flight slot and cancels its model call at once.
    server = Server(app, access_log=access, handler_cancellation=True)
    try:
        await server.start()
        log.info(
            "serving on http://%s:%d, /metrics on port %d",
            settings.bind_host,
            server.port,
            server.metrics_port,
        )
        stop, abort = asyncio.Event(), asyncio.Event()

        def signalled() -> None:  # the second signal cuts the drain short
            (abort if stop.is_set() else stop).set()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, signalled)
        await stop.wait()
        await server.drain(abort=abort)
        log.info("drained: exiting")
    finally:
        await server.close()


def main() -> int:
    tune_malloc()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        asyncio.run(serve(settings))
    except SettingsError as exc:  # found at start-up, before anything listens
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
