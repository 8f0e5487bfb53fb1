"""python -m gateway: validate settings, then serve on $PORT (default 9696)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

from aiohttp import web

from gateway.app import create_app
from gateway.settings import SettingsError, load_settings

log = logging.getLogger("gateway")

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MiB = 1024 * 1024


def tune_malloc() -> bool:
    """Keep ~1 MB request buffers in the heap instead of fresh mmap()s.

    Every request allocates and frees several 1 MB buffers (decoded image, float32 tensor,
    serialised request). glibc serves those with mmap and returns them on free, so each
    request faulted in ~500 fresh pages: about a third of the gateway's CPU. Raising both
    thresholds keeps freed memory for reuse (RSS stays near its peak). Same effect as the
    MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ environment variables, which win if set.
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
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 * MiB)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 128 * MiB)
    )


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
    web.run_app(
        create_app(settings),
        host=settings.bind_host,
        port=settings.listen_port,
        access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
        print=log.info,
        shutdown_timeout=10,
        # A client that gives up frees its in-flight slot and cancels its model call at once.
        handler_cancellation=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
