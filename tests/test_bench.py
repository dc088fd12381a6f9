"""The benchmark program runs end to end and prints its figures (no timing is asserted)."""

import subprocess
import sys


def test_bench_ledger_prints_every_phase_and_a_clean_audit():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "timebank.cli",
            "bench",
            "ledger",
            "--clients",
            "2",
            "--accounts",
            "50",
            "--seconds",
            "0.5",
            "--batch-size",
            "5",
            "--history",
            "200",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for line in ("a  floor", "b  service", "c  service: Ledger.post_batch", "b/a", "c/a"):
        assert line in result.stdout
    assert "ledger verified clean" in result.stdout
