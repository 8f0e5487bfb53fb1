"""HTTP connection guards under aiohttp's server: what happens before a request reaches the app.

- A request head (request line and headers) must arrive within GATEWAY_HEADER_TIMEOUT_SECONDS
  of its first byte; a connection that drips header bytes is closed. (aiohttp only has an
  idle keep-alive timer, which a trickle of bytes never trips.)
- At most GATEWAY_MAX_CONNECTIONS connections are open; the next ones are closed at once, so
  per-connection buffers stay bounded.
- Malformed HTTP is answered with a JSON 400 and logged at WARNING without a traceback, once per
  peer per minute and at most a few lines a minute overall: anyone can send garbage, and a log
  line with a traceback per request would be a log flood on demand.

These hook into aiohttp's RequestHandler, Server and AppRunner (pinned in requirements.txt; the
tests in tests/gateway/test_protocol.py fail if an upgrade moves the hooks).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("gateway")

PEER_LOG_INTERVAL = 60.0  # seconds between two lines about the same peer
LINES_PER_INTERVAL = 10  # lines about malformed requests per interval, all peers together
_PEERS_REMEMBERED = 4096


class MalformedRequestLog:
    """Rate-limited WARNING lines about malformed requests, without tracebacks."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._last_by_peer: OrderedDict[str, float] = OrderedDict()
        self._window_start = -PEER_LOG_INTERVAL
        self._lines_in_window = 0
        self.suppressed = 0  # lines not written since the last one that was
        self.seen = 0

    def report(self, peer: str, problem: str) -> bool:
        """Count one malformed request; log it unless this peer or the log is rate-limited."""
        self.seen += 1
        now = self._clock()
        if now - self._window_start >= PEER_LOG_INTERVAL:
            self._window_start, self._lines_in_window = now, 0
        last = self._last_by_peer.get(peer)
        if (last is not None and now - last < PEER_LOG_INTERVAL) or (
            self._lines_in_window >= LINES_PER_INTERVAL
        ):
            self.suppressed += 1
            return False
        self._remember(peer, now)
        self._lines_in_window += 1
        more = f" ({self.suppressed} more not logged)" if self.suppressed else ""
        self.suppressed = 0
        log.warning("malformed HTTP request from %s: %s%s", peer, problem, more)
        return True

    def _remember(self, peer: str, now: float) -> None:
        self._last_by_peer[peer] = now
        self._last_by_peer.move_to_end(peer)
        while len(self._last_by_peer) > _PEERS_REMEMBERED:
            self._last_by_peer.popitem(last=False)


class ConnectionGuard:
    """Settings and shared state of the guards, one per server."""

    def __init__(self, *, header_timeout: float, max_connections: int) -> None:
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.open_connections = 0
        self.refused_connections = 0
        self.header_timeouts = 0
        self.malformed = MalformedRequestLog()

    @property
    def malformed_requests(self) -> int:
        return self.malformed.seen


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection protocol with a request-head deadline and a connection cap."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager.guard
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_request = False
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        guard = self._guard
        if guard.open_connections >= guard.max_connections:
            guard.refused_connections += 1
            self.force_close()
            return
        guard.open_connections += 1
        self._counted = True

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head_timer()
        if self._counted:
            self._guard.open_connections -= 1
            self._counted = False
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # The first byte of a request head starts its clock; the app stops it (head_received).
        if data and not self._in_request and self._head_timer is None:
            self._head_timer = self._loop.call_later(
                self._guard.header_timeout, self._head_timed_out
            )
        super().data_received(data)

    def head_received(self) -> None:
        self._in_request = True
        self._cancel_head_timer()

    def request_done(self) -> None:
        self._in_request = False

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_request:
            self._guard.header_timeouts += 1
            self.force_close()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self.request_done()

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            self._guard.malformed.report(self._peer(), _describe(exc))
        else:  # not the client's doing: a bug worth a traceback
            super().log_exception(*args, **kw)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's own error answers (malformed HTTP, a handler that escaped), as JSON.

        Replaces aiohttp's version, which logs a traceback per malformed request (at DEBUG for
        a first request with a bad method, at ERROR otherwise).
        """
        if request.writer.output_size > 0:  # part of a response went out: nothing to fix
            raise ConnectionError("response already started, cannot answer the error")
        if isinstance(exc, HttpProcessingError):
            text = f"malformed HTTP request: {_describe(exc)}"
            self._guard.malformed.report(self._peer(), _describe(exc))
        else:  # not the client's doing: a bug worth a traceback
            text = "internal error" if status >= 500 else "bad request"
            if exc is not None:
                log.error("error handling a request from %s", self._peer(), exc_info=exc)
        response = web.Response(
            status=status, text=json.dumps({"error": text}), content_type="application/json"
        )
        response.force_close()
        return response

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


def _describe(exc: HttpProcessingError) -> str:
    # The message can quote the offending bytes; keep log lines short and printable.
    text = (exc.message or type(exc).__name__).splitlines()[0]
    return text.encode("ascii", "backslashreplace").decode()[:200]


class GuardedServer(web.Server):
    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        factory = self.request_factory

        def started(*parts: Any) -> web.BaseRequest:  # message, payload, protocol, writer, task
            protocol = parts[2]
            if isinstance(protocol, GuardedRequestHandler):
                protocol.head_received()
            return factory(*parts)

        self.request_factory = started

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """An AppRunner whose server guards its connections (see the module docstring)."""

    def __init__(self, app: web.Application, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> web.Server:
        stock = await super()._make_server()  # starts the app (on_startup, cleanup_ctx)
        return GuardedServer(
            stock.request_handler,
            request_factory=stock.request_factory,
            handler_cancellation=stock.handler_cancellation,
            loop=stock._loop,
            guard=self.guard,
            **stock._kwargs,
        )
