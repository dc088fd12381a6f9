"""`timebank serve` as a process of its own, for the tests that kill it or stop it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time

import httpx

from tests.live import free_port

TIMEBANK = [sys.executable, "-m", "timebank.cli"]


def environment(database_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env.update(TIMEBANK_DATABASE_URL=database_url, TIMEBANK_ACCESS_LOG="false", **settings)
    return env


class Server:
    """`timebank serve` as a process of its own, which the test can kill outright."""

    def __init__(self, database_url: str, **settings: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = environment(database_url, **settings)
        self.log = tempfile.TemporaryFile()
        self.process: subprocess.Popen | None = None

    def spawn(self) -> subprocess.Popen:
        return subprocess.Popen(
            [*TIMEBANK, "serve", "--port", str(self.port)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    async def start(self) -> None:
        self.process = self.spawn()
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                assert self.process.poll() is None, self.output()
                try:
                    if (await http.get(f"{self.base_url}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not come up"
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]
