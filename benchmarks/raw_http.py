"""A lean HTTP/1.1 keep-alive client for load generation, on asyncio streams.

Why not httpx here: on a 2-core machine the load generator shares the CPU with the API it
measures. httpx spends 1.6-1.9 ms of CPU per request (measured against this API: see
docs/benchmarks.md), as much as the API's own work for a one-sentence /predict, so a
16-client phase measured the client as much as the server. This client writes a request
prepared once per body and reads the status line, the headers it needs
(Content-Length, Connection) and the body: tens of microseconds per request. It speaks
only what the benchmarks send (POST/GET with a body of known length, answers with
Content-Length), which is all uvicorn sends for JSON answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


class HttpError(Exception):
    """The connection failed or the answer was not HTTP/1.1 this client can read."""


class RawConnection:
    """One keep-alive connection to `url`'s host; reconnects after the server closes it."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 120):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http:// URLs: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head = f"Host: {parts.netloc}\r\n{extra}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def request_bytes(self, method: str, path: str, body: bytes, content_type: str) -> bytes:
        """The whole request, to prepare once and send many times."""
        return (
            f"{method} {path} HTTP/1.1\r\n{self._head}"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """(status, body) of one prepared request."""
        try:
            return await asyncio.wait_for(self._exchange(request), self.timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            await self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
            elif name == "transfer-encoding":
                raise ValueError("chunked answers are not read by this client")
        body = await self._reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def __aenter__(self) -> RawConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
