"""The dashboard's way to the daemon: blocking `Client` calls run in threads.

The client library is synchronous and already knows every way to reach a daemon
(Unix socket, system socket, TCP with TLS and a token); reusing it beats a second,
asynchronous implementation of the same protocol. A few clients are kept open and
each is used by one thread at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from queuectl_client.client import Client

POOL_SIZE = 4


class DaemonLink:
    def __init__(self, make_client: Callable[[], Client], size: int = POOL_SIZE) -> None:
        self.make_client = make_client
        self._idle: list[Client] = []
        self._slots = asyncio.Semaphore(size)

    async def run(self, fn: Callable[[Client], Any]) -> Any:
        """fn(client) in a thread, on a client no other thread is using."""
        async with self._slots:
            client = self._idle.pop() if self._idle else self.make_client()
            try:
                return await asyncio.to_thread(fn, client)
            finally:
                self._idle.append(client)

    async def call(self, op: str, **args: Any) -> Any:
        return await self.run(lambda client: client.call(op, **args))

    def close(self) -> None:
        for client in self._idle:
            client.close()
        self._idle.clear()
