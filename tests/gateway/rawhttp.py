"""Raw HTTP over a socket, for clients no library would be: trickling, malformed, half-sent."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class RawClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def connect(cls, base: str) -> RawClient:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def drip(self, data: bytes, every: float, step: int = 1) -> None:
        """Send data a few bytes at a time; stops quietly when the server hangs up."""
        try:
            for i in range(0, len(data), step):
                await self.send(data[i : i + step])
                await asyncio.sleep(every)
        except (ConnectionError, OSError):
            return

    async def response(self, timeout: float = 10.0) -> tuple[int, dict[str, str], Any]:
        """Status, headers (lower-case names) and the JSON body of one response."""
        async with asyncio.timeout(timeout):
            status_line = await self.reader.readline()
            assert status_line.startswith(b"HTTP/1."), status_line
            headers: dict[str, str] = {}
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, json.loads(body) if body else None

    async def closed_by_server(self, timeout: float = 10.0) -> bool:
        """True once the server closes the connection (EOF or reset) within `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except (ConnectionError, OSError):
            return True
        return True

    def close(self) -> None:
        self.writer.close()


def head(method: str, path: str, **headers: str | int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
