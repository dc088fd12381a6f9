"""The service running for real (uvicorn on a free local port, in a thread of the test process),
for tests that speak HTTP over a socket: schemathesis, the README scenario."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn

from timebank.app import create_app
from timebank.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_service(database_url: str, settings: Settings | None = None) -> Iterator[str]:
    """Serve the app on the test database; yield its base URL; stop it afterwards."""
    port = free_port()
    app = create_app(settings or Settings(cookie_secure=False), database_url=database_url)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        raise RuntimeError("the service did not come up")
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
