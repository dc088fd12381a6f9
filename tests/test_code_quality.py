"""The checks a reviewer would run: ruff lint and format, mypy on the package, hadolint on the
Dockerfile. Each test runs the tool exactly as a developer would and shows its complaints."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess:
    executable = BIN / tool if (BIN / tool).exists() else shutil.which(tool)
    if executable is None:
        pytest.fail(
            f"{tool} is not installed; it comes with the test extra: pip install -e '.[test]'"
        )
    return subprocess.run(
        [str(executable), *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_ruff_finds_nothing():
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_ruff_formatted():
    result = run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing_in_the_package():
    result = run("mypy", "timebank")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_passes_the_dockerfile():
    result = run("hadolint", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr
