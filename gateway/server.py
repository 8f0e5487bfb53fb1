"""The gateway's two listeners in one process, and its way out on SIGTERM.

The API (PORT) and /metrics (GATEWAY_METRICS_PORT) are two aiohttp runners, each with its own
site and connection guard. The drain, when Kubernetes stops the pod (the Pulumi program's
preStop pause has already taken it out of the Service's endpoints by then):

1. /readyz answers 503 at once, and every answer from now on carries `Connection: close`.
2. The API's listening socket closes (asyncio.Server.close: listening sockets only, open
   connections stay): new connections are refused.
3. Requests in flight finish, for up to GATEWAY_SHUTDOWN_SECONDS less the final grace. Kept-alive
   connections stay open meanwhile; a request arriving on one is served, then closed.
4. AppRunner.cleanup (aiohttp 3.14 web_runner.py `BaseRunner.cleanup`, web_server.py
   `pre_shutdown`/`shutdown`, web_protocol.py `RequestHandler.shutdown`): closes the idle
   connections, waits up to `shutdown_timeout` (the final grace) for handlers still running,
   cancels them, then runs the app's cleanup (gRPC channel, decode threads).
5. The metrics runner stops last, so scrapes work during the drain.

A second SIGTERM/SIGINT cuts step 3 short.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from gateway.app import SETTINGS, create_metrics_app, make_runner
from gateway.drain import DRAIN

log = logging.getLogger("gateway")

FINAL_GRACE = 1.0  # seconds left, within the bound, for handlers that started at the very end


class Server:
    def __init__(
        self,
        app: web.Application,
        *,
        final_grace: float = FINAL_GRACE,
        metrics_app: web.Application | None = None,
        **runner: Any,
    ) -> None:
        """`runner` goes to the API's runner (access_log, handler_cancellation...)."""
        self.app = app
        self.settings = app[SETTINGS]
        self.grace = min(final_grace, self.settings.drain_seconds)
        self.runner = make_runner(app, shutdown_timeout=self.grace, **runner)
        self.metrics_runner = make_runner(
            metrics_app or create_metrics_app(app), access_log=None, shutdown_timeout=self.grace
        )
        self.port = 0
        self.metrics_port = 0
        self._closed = False

    async def start(
        self, host: str | None = None, port: int | None = None, metrics_port: int | None = None
    ) -> None:
        """Listen on the settings' host and ports, or these (0: any free port)."""
        host = self.settings.bind_host if host is None else host
        try:
            await self.runner.setup()  # starts the app: TF Serving channel, key watcher...
            await self.metrics_runner.setup()
            await web.TCPSite(
                self.runner, host, self.settings.listen_port if port is None else port
            ).start()
            await web.TCPSite(
                self.metrics_runner,
                host,
                self.settings.metrics_port if metrics_port is None else metrics_port,
            ).start()
        except BaseException:
            await self.close()
            raise
        self.port = int(self.runner.addresses[0][1])
        self.metrics_port = int(self.metrics_runner.addresses[0][1])

    async def drain(self, timeout: float | None = None, abort: asyncio.Event | None = None) -> None:
        """Steps 1-5 above; returns once everything is closed."""
        timeout = self.settings.drain_seconds if timeout is None else timeout
        drain = self.app[DRAIN]
        drain.start()
        for site in list(self.runner.sites):
            await site.stop()
        log.info(
            "draining: %d requests in flight, new connections refused, at most %.1f s",
            drain.active,
            timeout,
        )
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(drain.idle())]
        if abort is not None:
            waiters.append(asyncio.ensure_future(abort.wait()))
        try:
            await asyncio.wait(
                waiters, timeout=max(0.0, timeout - self.grace), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        if drain.active:
            log.warning("%d requests still in flight: cancelling them", drain.active)
        await self.close()

    async def close(self) -> None:
        """Stop at once (the drain's last step; tests)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.runner.cleanup()
        finally:
            await self.metrics_runner.cleanup()
