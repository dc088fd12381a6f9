"""`timebank serve` with several workers spreads connections over all of them: a burst of new
keep-alive connections (a proxy opening its pool, clients coming back after a restart) used to
land on whichever worker woke first and stay there, leaving the others idle. It still does
after a worker dies and is started again."""

from __future__ import annotations

import asyncio
import signal
import socket
import time

import psutil

from tests.ops.server import Server

WORKERS = 2
CONNECTIONS = 32  # per worker at least 4, unless chance is off by six standard deviations


def _open_and_ask(port: int) -> list[socket.socket]:
    """CONNECTIONS keep-alive connections opened at once, each answered once and kept open."""
    opened = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNECTIONS)]
    for sock in opened:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: timebank\r\n\r\n")
    for sock in opened:
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
    return opened


def _workers(server: Server) -> list[psutil.Process]:
    """The worker processes alive now (a killed one lingers as a zombie until reaped)."""
    assert server.process is not None
    alive = []
    for child in psutil.Process(server.process.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(
                child.cmdline()
            ):
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


def _count(worker: psutil.Process, port: int, status: str) -> int:
    try:
        connections = worker.net_connections(kind="tcp")
    except psutil.NoSuchProcess:  # died just now: holds nothing
        return 0
    return sum(1 for c in connections if c.status == status and c.laddr.port == port)


def _connections_by_worker(server: Server) -> dict[int, int]:
    return {w.pid: _count(w, server.port, psutil.CONN_ESTABLISHED) for w in _workers(server)}


def _all_listening(server: Server) -> set[int]:
    """The workers, once each listens on the port (an empty set until then)."""
    workers = _workers(server)
    listening = [_count(w, server.port, psutil.CONN_LISTEN) >= 1 for w in workers]
    if len(workers) != WORKERS or not all(listening):
        return set()
    return {w.pid for w in workers}


def _close(opened: list[socket.socket]) -> None:
    for sock in opened:
        sock.close()


async def test_connections_are_spread_over_every_worker(database_url):
    server = Server(database_url, TIMEBANK_WORKERS=str(WORKERS))
    try:
        await server.start()
        deadline = time.monotonic() + 30
        while not _all_listening(server):
            assert time.monotonic() < deadline, "the workers did not all come up"
            await asyncio.sleep(0.1)
        opened = _open_and_ask(server.port)
        spread = _connections_by_worker(server)
        assert len(spread) == WORKERS, spread
        assert sum(spread.values()) == CONNECTIONS, spread
        assert min(spread.values()) >= 4, f"connections per worker: {spread}"
        _close(opened)

        # A worker killed outright is replaced, and the replacement takes its share.
        killed = max(spread)
        psutil.Process(killed).send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 30
        while killed in _all_listening(server) or not _all_listening(server):
            assert time.monotonic() < deadline, f"no replacement for worker {killed}"
            await asyncio.sleep(0.1)
        opened = _open_and_ask(server.port)
        spread = _connections_by_worker(server)
        assert killed not in spread and len(spread) == WORKERS, spread
        assert min(spread.values()) >= 4, f"connections per worker after a restart: {spread}"
        _close(opened)
    finally:
        server.stop()
