"""The load program runs end to end at a tiny scale and prints its figures (no timing is
asserted: benchmarks are programs, DESIGN.md §6)."""

import subprocess
import sys


def test_bench_load_prints_both_flows_beside_the_floor_and_a_clean_audit():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "timebank.cli",
            "bench",
            "load",
            "--clients",
            "4",
            "--seconds",
            "1",
            "--members",
            "10",
            "--workers",
            "1",
            "--pool-size",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    for line in (
        "floor: raw SQL transfers",
        "auto-approve (log; balance, report reads)",
        "coordinator approval (log, confirm, approve)",
        "posted exchanges/s / floor transfers/s",
        "p99 latency",
        "5xx answers: 0",
    ):
        assert line in result.stdout, result.stdout
    assert "ledger verified clean" in result.stdout
