"""Benchmark images and the loopback image server every gateway downloads them from.

venv/bin/python -m tools.bench.images      # serves /photo.jpg and /12mp.jpg, prints its port
"""

from __future__ import annotations

import asyncio
import io
import sys

import numpy as np
from aiohttp import web
from PIL import Image

PHOTO = (1024, 768)  # a phone photo after the usual resize
BIG = (4000, 3000)  # 12 MP, straight from a camera
PATHS = {"/photo.jpg": PHOTO, "/12mp.jpg": BIG}


def test_image(width: int = PHOTO[0], height: int = PHOTO[1]) -> bytes:
    """A photo-like JPEG: smooth gradients and shapes plus mild sensor noise, quality 90."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 100 * np.sin(xx / (width / 11)) * np.cos(yy / (height / 11))
    g = 255 * (xx + yy) / (width + height)
    b = 200 * ((xx - width / 2) ** 2 + (yy - height / 2) ** 2 < (height / 3) ** 2) + 30
    rgb = np.stack([r, g, b], -1) + np.random.default_rng(0).normal(0, 4, (height, width, 3))
    buf = io.BytesIO()
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


async def _serve() -> None:
    files = {path: test_image(*size) for path, size in PATHS.items()}

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=files[request.path], content_type="image/jpeg")

    app = web.Application()
    for path in files:
        app.router.add_get(path, image)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)  # the benchmark reads the port from here
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(_serve())
    except KeyboardInterrupt:
        sys.exit(0)
