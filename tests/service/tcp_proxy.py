"""A tiny asyncio TCP proxy for fault injection: 127.0.0.1:<free port> -> a target.

::

    async with TcpProxy("127.0.0.1", redis_port) as proxy:
        client = Redis.from_url(proxy.url)
        proxy.cut()                                  # abort every connection now
        proxy.cut(after_bytes=500, direction="up")   # ... once 500 more bytes went client->server
        proxy.pause(); proxy.resume()                # hold traffic (connections stay open)
        proxy.refuse(); proxy.accept()               # drop every connection, refuse new ones

A cut aborts the sockets (no graceful close), on both sides, so the client and the server each
see a connection reset in the middle of whatever was travelling: with ``after_bytes`` only the
first part of a command (``up``) or of a reply (``down``) gets through.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

Direction = Literal["up", "down", "any"]


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.server):
            writer.transport.abort()


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._accepting = True
        self._cut_after: int | None = None
        self._cut_direction: Direction = "any"
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections = 0
        self.cuts = 0
        """Cuts carried out, each aborting every open connection."""
        self.cut_links = 0
        """Connections aborted by cuts, over all of them."""
        self.cut_done = asyncio.Event()
        """Set by each cut (clear it to wait for the next)."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        links = list(self._links)
        for link in links:
            link.abort()
        for link in links:
            for task in link.tasks:
                task.cancel()
            await asyncio.gather(*link.tasks, return_exceptions=True)
        self._links.clear()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- faults -------------------------------------------------------------------------------

    def cut(self, *, after_bytes: int | None = None, direction: Direction = "any") -> None:
        """Abort every open connection now, or as soon as ``after_bytes`` more bytes have been
        forwarded in ``direction`` (the bytes before that point are delivered)."""
        if after_bytes is None:
            self._cut_all()
        else:
            self._cut_after = after_bytes
            self._cut_direction = direction

    def pause(self) -> None:
        """Stop forwarding (both ways); connections stay open, data waits."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def refuse(self) -> None:
        """Abort every connection and close each new one at once, until :meth:`accept`."""
        self._accepting = False
        self._cut_all()

    def accept(self) -> None:
        self._accepting = True

    def _cut_all(self) -> None:
        self._cut_after = None
        self.cuts += 1
        self.cut_links += len(self._links)
        for link in list(self._links):
            link.abort()
        self.cut_done.set()

    # -- forwarding ---------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._accepting:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        loop = asyncio.get_running_loop()
        link.tasks = [
            loop.create_task(self._pump(link, reader, up_writer, "up")),
            loop.create_task(self._pump(link, up_reader, writer, "down")),
        ]
        try:
            await asyncio.gather(*link.tasks, return_exceptions=True)
        finally:
            link.abort()
            self._links.discard(link)

    async def _pump(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: Literal["up", "down"],
    ) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()
                armed = self._cut_after is not None and self._cut_direction in (direction, "any")
                if armed and self._cut_after is not None and len(data) >= self._cut_after:
                    writer.write(data[: self._cut_after])
                    await self._drained(writer)
                    self._count(direction, self._cut_after)
                    self._cut_all()
                    return
                if armed and self._cut_after is not None:
                    self._cut_after -= len(data)
                writer.write(data)
                self._count(direction, len(data))
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            link.abort()

    @staticmethod
    async def _drained(writer: asyncio.StreamWriter) -> None:
        """Until the kernel has the bytes written so far (so a cut comes after them)."""
        for _ in range(200):
            if writer.transport.get_write_buffer_size() == 0:
                return
            await asyncio.sleep(0.005)

    def _count(self, direction: str, size: int) -> None:
        if direction == "up":
            self.bytes_up += size
        else:
            self.bytes_down += size
