"""One `watch` stream from the daemon, shared by every open page.

A thread reads the stream (the client library blocks) and hands each frame to
the event loop, which copies it to one bounded queue per server-sent-events
response. Ten open dashboards cost the daemon one watcher. When the stream
drops, pages are told (`down`) and poll until it is back.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from queuectl_client.client import Client

RECONNECT_SECONDS = 2.0
# Frames a page may fall behind by; past it, it is told to reload what it shows.
PAGE_BACKLOG = 100


class Live:
    def __init__(self, make_client: Callable[[], Client], interval: float = 1.0) -> None:
        self.make_client = make_client
        self.interval = interval
        self.connected = False
        self.latest: dict | None = None  # the last snapshot, for a page that just opened
        self._pages: set[asyncio.Queue] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._client: Client | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._read, name="queuectl-web-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        client = self._client
        if client is not None:
            client.close()  # wakes the reading thread
        if self._thread is not None:
            self._thread.join(timeout=5)

    def end_pages(self) -> None:
        """Tell every open event stream to finish (the server is stopping)."""
        for queue in self._pages:
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(PAGE_BACKLOG)
        self._pages.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._pages.discard(queue)

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self._client = self.make_client()
                for frame in self._client.watch(interval=self.interval):
                    self._hand_over(frame)
                    if self._stop.is_set():
                        break
            except Exception:  # any failure: the pages poll until the stream is back
                pass
            finally:
                if self._client is not None:
                    self._client.close()
                    self._client = None
            self._hand_over({"type": "down"})
            self._stop.wait(RECONNECT_SECONDS)

    def _hand_over(self, frame: dict) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._publish, frame)
            except RuntimeError:
                pass  # the loop closed meanwhile: the server is stopping

    def _publish(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "snapshot":
            self.latest = frame
        was = self.connected
        self.connected = kind != "down"
        if kind == "down" and not was:
            return  # said once per outage, not at every retry
        for queue in self._pages:
            if queue.full():
                # A page that does not keep up gets one "resync" instead of old news.
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"type": "resync"})
            else:
                queue.put_nowait(frame)
