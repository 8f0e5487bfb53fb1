"""What a replica does while it drains (after SIGTERM): the requests in flight, counted by the
outermost middleware, and `Connection: close` on every answer from then on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web


class Drain:
    def __init__(self) -> None:
        self.draining = False
        self.active = 0  # requests inside the app's handlers now, every route
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self.draining = True

    def enter(self) -> None:
        self.active += 1
        self._idle.clear()

    def leave(self) -> None:
        self.active -= 1
        if self.active == 0:
            self._idle.set()

    async def idle(self) -> None:
        """Until no request is in flight (new ones may still come on open connections)."""
        while self.active:
            await self._idle.wait()


DRAIN = web.AppKey("drain", Drain)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def track_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    drain = request.app[DRAIN]
    drain.enter()
    try:
        response = await handler(request)
    finally:  # answered, failed or cancelled (the client left)
        drain.leave()
    if drain.draining:
        # The client's next request would find the listener closed: tell it to reconnect
        # (to another replica) now, also on a kept-alive connection that was idle.
        response.force_close()
    return response
