"""Test helpers: images made in memory, a real loopback image server, a running gateway."""

from __future__ import annotations

import asyncio
import gzip
import io
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web
from PIL import Image

from gateway.app import create_app
from gateway.contract import METRICS_PATH
from gateway.netguard import UnresolvableHostError
from gateway.server import Server
from gateway.settings import Settings, load_settings


def encode(img: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def solid(color: tuple[int, int, int], size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    return encode(Image.new("RGB", size, color), fmt)


def photo(size: tuple[int, int] = (1024, 768), seed: int = 0) -> Image.Image:
    """A deterministic photo-like RGB image: gradients plus noise (JPEG-realistic)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([xx / w * 255, yy / h * 255, (np.sin(xx / 17) * np.cos(yy / 23) + 1) * 127], -1)
    rgb += np.random.default_rng(seed).normal(0, 12, rgb.shape)
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8))


RED_PNG = solid((255, 0, 0))
RED_JPEG = solid((255, 0, 0), fmt="JPEG")


@dataclass
class ImageServer:
    """A real HTTP server on 127.0.0.1 serving test images and misbehaving on purpose."""

    big_size: int = 200 * 1024
    port: int = 0
    hits: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def app(self) -> web.Application:
        big = np.random.default_rng(1).integers(0, 256, self.big_size, dtype=np.uint8).tobytes()
        jpeg = encode(photo((320, 240)), "JPEG", quality=90)
        files = {
            "/red.png": (RED_PNG, "image/png"),
            "/red.jpg": (RED_JPEG, "image/jpeg"),
            "/photo.jpg": (jpeg, "image/jpeg"),
            "/truncated.jpg": (jpeg[: len(jpeg) // 2], "image/jpeg"),
            "/page.html": (b"<html>not an image</html>", "text/html"),
            "/big.bin": (big, "image/jpeg"),
            "/bomb.png": (encode(Image.new("L", (3000, 3000)), "PNG"), "image/png"),
        }

        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            self.hits.append(request.path)
            self.hosts.append(request.host)
            response: web.StreamResponse = await handler(request)
            return response

        async def static(request: web.Request) -> web.Response:
            body, ctype = files[request.path]
            return web.Response(body=body, content_type=ctype)

        async def chunked_big(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
            resp.enable_chunked_encoding()  # no Content-Length: the cap must hold while streaming
            await resp.prepare(request)
            for start in range(0, len(big), 16 * 1024):
                await resp.write(big[start : start + 16 * 1024])
            await resp.write_eof()
            return resp

        async def gzipped(request: web.Request) -> web.Response:
            body = gzip.compress(RED_PNG)
            return web.Response(
                body=body, headers={"Content-Type": "image/png", "Content-Encoding": "gzip"}
            )

        async def redirect(request: web.Request) -> web.Response:
            left = int(request.match_info["n"])
            target = "/red.png" if left <= 1 else f"/redirect/{left - 1}"  # n redirects
            raise web.HTTPFound(target)

        async def slow_redirect(request: web.Request) -> web.Response:
            await asyncio.sleep(0.2)  # each hop is quick; together they are not
            left = int(request.match_info["n"])
            raise web.HTTPFound("/red.png" if left <= 1 else f"/slow-redirect/{left - 1}")

        async def redirect_to(request: web.Request) -> web.Response:
            raise web.HTTPFound(request.query["to"])

        async def redirect_with(request: web.Request) -> web.Response:
            code = int(request.match_info["code"])  # 301, 302, 303, 307 or 308
            return web.Response(status=code, headers={"Location": request.query["to"]})

        async def status(request: web.Request) -> web.Response:
            return web.Response(status=int(request.match_info["code"]), text="no")

        async def trickle(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "image/png"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for i in range(100):  # bounded: at most ~5 s even if nobody hangs up
                await resp.write(RED_PNG[i : i + 1])
                await asyncio.sleep(0.05)
            return resp

        async def slow_headers(request: web.Request) -> web.Response:
            await asyncio.sleep(3)
            return web.Response(body=RED_PNG, content_type="image/png")

        app = web.Application(middlewares=[web.middleware(record)])
        for path in files:
            app.router.add_get(path, static)
        app.router.add_get("/chunked-big", chunked_big)
        app.router.add_get("/gzip.png", gzipped)
        app.router.add_get("/redirect/{n}", redirect)
        app.router.add_get("/slow-redirect/{n}", slow_redirect)
        app.router.add_get("/redirect-to", redirect_to)
        app.router.add_get("/redirect-with/{code}", redirect_with)
        app.router.add_get("/status/{code}", status)
        app.router.add_get("/trickle", trickle)
        app.router.add_get("/slow-headers", slow_headers)
        return app

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> ImageServer:
        self._runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def fake_dns(table: dict[str, list[str]]) -> Callable[[str, int], Awaitable[list[str]]]:
    """A resolver hook: names from the table, everything else unresolvable. No network."""

    async def lookup(host: str, port: int) -> list[str]:
        if host not in table:
            raise UnresolvableHostError(f"cannot resolve host {host!r}")
        return list(table[host])

    return lookup


@dataclass
class RunningGateway:
    settings: Settings
    app: web.Application
    server: Server
    base: str
    metrics_base: str

    def url(self, path: str) -> str:
        return self.base + path

    def metrics_url(self, path: str = METRICS_PATH) -> str:
        return self.metrics_base + path

    async def close(self) -> None:
        await self.server.close()


# create_app's keyword arguments; the rest are settings (and handler_cancellation=).
_APP_KWARGS = ("lookup", "ssl_context", "rng", "key_check_seconds")


async def start_gateway(tfs_port: int | None, **overrides: Any) -> RunningGateway:
    """The real app (both listeners) on real loopback sockets. lookup=/ssl_context=/rng=/
    key_check_seconds= go to create_app, handler_cancellation= to the runner (aiohttp then
    cancels a handler whose client left). tfs_port None: tf_serving_target is in overrides."""
    app_kwargs = {k: overrides.pop(k) for k in _APP_KWARGS if k in overrides}
    cancel = bool(overrides.pop("handler_cancellation", False))
    values: dict[str, Any] = {}
    if tfs_port is not None:
        values["tf_serving_target"] = f"127.0.0.1:{tfs_port}"
    values.update(overrides)
    settings = load_settings(**values)
    app = create_app(settings, **app_kwargs)
    server = Server(app, final_grace=0.1, handler_cancellation=cancel)
    await server.start("127.0.0.1", 0, 0)
    return RunningGateway(
        settings,
        app,
        server,
        f"http://127.0.0.1:{server.port}",
        f"http://127.0.0.1:{server.metrics_port}",
    )
