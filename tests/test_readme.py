"""The README's "Try the API" script runs as written against `timebank serve` on a fresh
embedded database, and prints what the README says it prints."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.live import free_port

ROOT = Path(__file__).resolve().parent.parent


def readme_scenario() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Try the API", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "the README has no script under 'Try the API'"
    return match.group(1)


def test_try_the_api_script_runs_as_written():
    assert (ROOT / ".venv/bin/timebank").exists(), "run the README's install command first"
    data_dir = Path(tempfile.mkdtemp(prefix="timebank-readme-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env["TIMEBANK_DATA_DIR"] = str(data_dir)
    server = subprocess.Popen(
        [sys.executable, "-m", "timebank.cli", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        result = subprocess.run(
            ["bash", "-c", readme_scenario()],
            env={**env, "TB": base},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        printed = result.stdout.split()
        assert printed[-5:] == ["awaiting_approval", "approved", "90", "-90", "True"], printed
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
