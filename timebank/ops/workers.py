"""Several worker processes that share the connections between them evenly.

uvicorn's workers share one listening socket, and whichever wakes first accepts everything
waiting: a burst of new keep-alive connections (a proxy opening its pool, clients coming back
after a restart, a load test starting) can all land on one worker and stay there for their
whole life, while the others idle. Here each worker listens on a socket of its own on the same
address (``SO_REUSEPORT``), and the kernel spreads new connections over them by their
addresses. uvicorn's supervisor still starts, watches and restarts the workers and passes
signals on; each worker it starts, or starts again, opens its own socket as it comes up."""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess


def can_share_port(host: str, port: int) -> bool:
    """Whether workers can each listen on (host, port): the platform has ``SO_REUSEPORT``
    and the port is a fixed one (every worker must land on the same)."""
    return hasattr(socket, "SO_REUSEPORT") and port != 0 and bool(host)


class _OwnSocket:
    """Stands for a listening socket in what uvicorn's supervisor hands a worker it starts:
    pickled on the way, it becomes in the worker a socket of that worker's own."""

    def __init__(self, host: str, port: int, backlog: int) -> None:
        self.host, self.port, self.backlog = host, port, backlog

    def __reduce__(self) -> tuple[Any, tuple[str, int, int]]:
        return (listen_shared, (self.host, self.port, self.backlog))


def listen_shared(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket on (host, port) that other processes of this user may open too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def run_workers(config: uvicorn.Config) -> None:
    """Run ``config.workers`` workers under uvicorn's supervisor, each on its own socket."""
    listener: Any = _OwnSocket(config.host, config.port, config.backlog)  # a socket once there
    Multiprocess(config, sockets=[listener]).run()
