"""A fault-injecting loopback TCP proxy (asyncio), one listening port per FaultProxy.

Modes (set_mode), applied to every connection, open or new:
  pass       forward bytes both ways.
  delay      forward each chunk after `delay` seconds (order kept per direction).
  stall      stop reading and forwarding; the bytes wait in the kernel buffers and flow again,
             intact, when the mode changes — a long TCP retransmission that recovers.
  blackhole  swallow every byte both ways and answer nothing (new connections are accepted but
             never reach the target). TCP never drops bytes silently, so a stream that lost bytes
             cannot resume: leaving blackhole cuts every connection that was blackholed, as a
             real peer's keepalive or retransmission timeout would.
  refuse     reset every open connection, and every new one at once: the target is down (a
             stopped PostgreSQL, a server that is not listening).
One-shot actions:
  cut_all            resets (RST) every open connection.
  arm_commit_drop(n) PostgreSQL only: forward the client's bytes, but after the (n+1)-th
                     COMMIT seen, swallow the server's reply and reset the connection — the
                     commit happened, the client never learns it (a lost COMMIT acknowledgement).
The hub runs all proxies on one event loop in a daemon thread; its methods are thread-safe.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from dataclasses import dataclass, field

from pgwire import COMMIT_DONE, COMMIT_QUERY, COMMIT_ROLLED_BACK, FrameMatcher

MODES = ("pass", "delay", "stall", "blackhole", "refuse")


@dataclass
class ProxyStats:
    connections: int = 0
    cuts: int = 0                 # connections reset by cut_all or the end of a blackhole
    commit_drops: int = 0         # COMMIT replies swallowed ...
    commit_drops_committed: int = 0  # ... of which the server had answered "COMMIT"
    episodes: dict = field(default_factory=dict)  # mode -> times entered


class Link:
    """One proxied connection: the accepted client socket and (unless blackholed) the target."""

    def __init__(self, client_reader, client_writer) -> None:
        self.client_reader = client_reader
        self.client_writer = client_writer
        self.server_reader = None
        self.server_writer = None
        self.blackholed = False
        self.dropping_reply: FrameMatcher | None = None
        self.tasks: list[asyncio.Task] = []
        self.closed = False

    def reset(self) -> None:
        """Closes both sides with RST (SO_LINGER 0), so each peer sees the connection torn down."""
        if self.closed:
            return
        self.closed = True
        for writer in (self.client_writer, self.server_writer):
            if writer is None:
                continue
            sock = writer.get_extra_info("socket")
            try:
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            writer.transport.abort()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()


class FaultProxy:
    def __init__(self, hub: "ProxyHub", name: str, target_port: int, postgres: bool = False) -> None:
        self.hub = hub
        self.name = name
        self.target_port = target_port
        self.postgres = postgres
        self.mode = "pass"
        self.delay = 0.0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.links: set[Link] = set()
        self.commit_drop_countdown: int | None = None
        self.stats = ProxyStats()
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    # -- thread-safe control ------------------------------------------------------------------

    def set_mode(self, mode: str, delay: float = 0.0) -> None:
        assert mode in MODES, mode
        self.hub.call(self._set_mode, mode, delay)

    def cut_all(self) -> int:
        return self.hub.call(self._cut_all)

    def arm_commit_drop(self, skip: int = 0) -> None:
        assert self.postgres, "COMMIT drops need a PostgreSQL proxy"
        self.hub.call(self._arm_commit_drop, skip)

    def commit_drop_pending(self) -> bool:
        return self.hub.call(lambda: self.commit_drop_countdown is not None)

    # -- on the loop ----------------------------------------------------------------------------

    async def _start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    def _set_mode(self, mode: str, delay: float) -> None:
        previous = self.mode
        self.mode, self.delay = mode, delay
        if mode != previous:
            self.stats.episodes[mode] = self.stats.episodes.get(mode, 0) + 1
        if mode == "blackhole":
            for link in self.links:
                link.blackholed = True
        elif mode == "refuse":
            for link in list(self.links):
                self._reset(link)
        elif previous == "blackhole":
            for link in [l for l in self.links if l.blackholed]:
                self._reset(link)
        if mode == "stall":
            self.flowing.clear()
        else:
            self.flowing.set()

    def _cut_all(self) -> int:
        links = list(self.links)
        for link in links:
            self._reset(link)
        return len(links)

    def _arm_commit_drop(self, skip: int) -> None:
        self.commit_drop_countdown = skip

    def _reset(self, link: Link) -> None:
        if not link.closed:
            self.stats.cuts += 1
        link.reset()
        self.links.discard(link)

    async def _accept(self, reader, writer) -> None:
        link = Link(reader, writer)
        self.links.add(link)
        self.stats.connections += 1
        if self.mode == "refuse":
            self._reset(link)
            return
        if self.mode == "blackhole":
            link.blackholed = True
        else:
            try:
                link.server_reader, link.server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError:
                self._reset(link)  # target down: the client sees a reset, as with no listener
                return
        pumps = [asyncio.ensure_future(self._pump(link, upstream=True))]
        if link.server_reader is not None:
            pumps.append(asyncio.ensure_future(self._pump(link, upstream=False)))
        link.tasks.extend(pumps)
        # Both directions end (EOF, error or reset) before the connection is torn down.
        await asyncio.gather(*pumps, return_exceptions=True)
        self._reset(link)

    async def _pump(self, link: Link, upstream: bool) -> None:
        """Reads one direction. Chunks go through a queue to _deliver, stamped with the time they
        are due, so `delay` adds latency without limiting throughput (a slow network, not a
        narrow one). A clean EOF is passed on as a half-close; a reset or error on one side
        resets the whole connection, as the peers of a dying TCP proxy would see it — never a
        half-open connection that keeps, say, a PostgreSQL transaction and its locks alive."""
        reader = link.client_reader if upstream else link.server_reader
        queue: asyncio.Queue = asyncio.Queue()
        delivery = asyncio.ensure_future(self._deliver(link, upstream, queue))
        link.tasks.append(delivery)
        loop = asyncio.get_running_loop()
        try:
            while not link.closed:
                await self.flowing.wait()
                data = await reader.read(65536)
                if not data:
                    await queue.put(None)
                    break
                if link.blackholed:
                    continue
                if not upstream and link.dropping_reply is not None:
                    self._swallow_reply(link, data)  # a reply to the COMMIT, or later
                    continue
                await queue.put((loop.time() + (self.delay if self.mode == "delay" else 0.0), data))
            await delivery
        except (ConnectionError, OSError):
            self._reset(link)
        except asyncio.CancelledError:
            pass

    async def _deliver(self, link: Link, upstream: bool, queue: asyncio.Queue) -> None:
        writer = link.server_writer if upstream else link.client_writer
        commits = FrameMatcher(COMMIT_QUERY) if (self.postgres and upstream) else None
        loop = asyncio.get_running_loop()
        try:
            while not link.closed:
                item = await queue.get()
                if item is None:
                    if link.blackholed:
                        self._reset(link)
                    elif writer.can_write_eof():
                        writer.write_eof()  # half-close: orderly shutdowns stay orderly
                    return
                due, data = item
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                await self.flowing.wait()
                if link.closed or link.blackholed:
                    continue
                writer.write(data)
                await writer.drain()
                if commits is not None and commits.feed(data) and self.commit_drop_countdown is not None:
                    if self.commit_drop_countdown == 0:
                        self.commit_drop_countdown = None
                        link.dropping_reply = FrameMatcher(COMMIT_DONE, COMMIT_ROLLED_BACK)
                        self.stats.commit_drops += 1
                        # However the server answers, the client must not hear it.
                        loop.call_later(3.0, self._reset, link)
                    else:
                        self.commit_drop_countdown -= 1
        except (ConnectionError, OSError):
            self._reset(link)
        except asyncio.CancelledError:
            pass

    def _swallow_reply(self, link: Link, data: bytes) -> None:
        outcome = link.dropping_reply.feed(data)
        if outcome is None:
            return
        if outcome == COMMIT_DONE:
            self.stats.commit_drops_committed += 1
        self._reset(link)


class ProxyHub:
    """Owns the event loop thread that runs every FaultProxy."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxy-hub", daemon=True)
        self.thread.start()
        self.proxies: list[FaultProxy] = []

    def call(self, fn, *args):
        """Runs fn(*args) on the loop and returns its result (awaiting it if it is a coroutine)."""

        async def run():
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    def add(self, name: str, target_port: int, postgres: bool = False) -> FaultProxy:
        proxy = self.call(lambda: FaultProxy(self, name, target_port, postgres))
        self.call(proxy._start)
        self.proxies.append(proxy)
        return proxy

    def close(self) -> None:
        for proxy in self.proxies:
            try:
                proxy.set_mode("pass")
                proxy.cut_all()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
