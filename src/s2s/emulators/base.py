"""What every emulator server shares: options, the listening address, TLS, start and stop.

A subclass binds its server in :meth:`Emulator._listen` (returning the port it got) and closes
it, with its connections, in :meth:`Emulator._shut`. The base applies keyword overrides to the
options (an unknown name is a ``TypeError``), serves TLS when the subclass asks for it (with the
certificate it is given, or one generated for ``localhost``/``127.0.0.1`` whose CA is
:attr:`Emulator.ca_file`, removed on stop), and is an async context manager.
"""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from ..log import logger
from .tls import self_signed, server_context

__all__ = ["Emulator", "apply_overrides"]

log = logger.getChild("emulator")


def apply_overrides(options: object, overrides: dict[str, Any]) -> None:
    """Set each ``overrides`` item on ``options``; an unknown name is a ``TypeError``."""
    for key, value in overrides.items():
        if not hasattr(options, key):
            raise TypeError(f"unknown emulator option {key!r}")
        setattr(options, key, value)


class Emulator:
    """Base of the emulator servers (see the module docstring)."""

    #: For the log line on start ("OpenAI Realtime", ...).
    label: ClassVar[str] = "s2s"
    #: Serve TLS (the Gemini SDK only speaks wss, the AWS CRT client only HTTP/2 over TLS).
    tls: ClassVar[bool] = False
    #: ALPN protocols offered with TLS.
    alpn: ClassVar[tuple[str, ...]] = ("http/1.1",)

    def __init__(
        self,
        *,
        host: str,
        port: int,
        certfile: str | Path | None = None,
        keyfile: str | Path | None = None,
    ) -> None:
        if (certfile is None) != (keyfile is None):
            raise ValueError("give both certfile and keyfile, or neither")
        self.host = host
        self.port = port
        self.certfile = Path(certfile) if certfile is not None else None
        self.keyfile = Path(keyfile) if keyfile is not None else None
        #: The CA a client must trust for the generated certificate (None otherwise).
        self.ca_file: Path | None = None
        self._generated: Path | None = None

    @property
    def url(self) -> str:
        """Where a client points (each subclass says in which form)."""
        raise NotImplementedError

    async def _listen(self, ssl_context: ssl.SSLContext | None) -> int:
        """Start serving on ``host``/``port``; return the bound port."""
        raise NotImplementedError

    async def _shut(self) -> None:
        """Stop serving and end every connection."""
        raise NotImplementedError

    async def start(self) -> Self:
        context = None
        if self.tls:
            if self.certfile is None or self.keyfile is None:
                files = self_signed()
                self._generated = files.cafile.parent
                self.certfile, self.keyfile = files.certfile, files.keyfile
                self.ca_file = files.cafile
            context = server_context(self.certfile, self.keyfile, alpn=self.alpn)
        try:
            self.port = await self._listen(context)
        except BaseException:
            self._remove_generated()
            raise
        log.info("%s emulator listening on %s", self.label, self.url)
        return self

    async def stop(self) -> None:
        try:
            await self._shut()
        finally:
            self._remove_generated()

    def _remove_generated(self) -> None:
        if self._generated is not None:
            shutil.rmtree(self._generated, ignore_errors=True)
            self._generated = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
