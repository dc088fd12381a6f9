"""The load program runs end to end at a tiny scale and prints its figures (no timing is
asserted: benchmarks are programs, DESIGN.md §6)."""

import re
import subprocess
import sys


def test_bench_load_prints_both_flows_and_the_paced_phase_beside_the_floor_and_a_clean_audit():
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
        "auto-approve at 0.2x the floor (paced)",
        "auto-approve, saturated (4 clients, no think time): posted/s",
        "auto-approve paced at 0.2x floor: posted/s",
        "5xx answers: 0",
    ):
        assert line in result.stdout, result.stdout
    assert "ledger verified clean" in result.stdout
    # Each flow posts exchanges (a bench that only logs what waits would measure nothing).
    for label in (
        "auto-approve (log; balance, report reads)",
        "coordinator approval (log, confirm, approve)",
    ):
        row = re.search(re.escape(label) + r"\s+(\d+)\s+(\d+)\s+(\d+)", result.stdout)
        assert row is not None and int(row.group(3)) > 0, (label, result.stdout)
    # The C floor (pgbench, shipped with the embedded PostgreSQL) ran beside the asyncpg one.
    c_floor = re.search(
        r"C floor \(pgbench, 16 clients, same SQL as the floor\): ([\d.]+) transfers/s",
        result.stdout,
    )
    assert c_floor is not None and float(c_floor[1]) > 0, result.stdout
    assert "C floor: pgbench (16 conns)" in result.stdout, result.stdout
    assert "x the C floor" in result.stdout, result.stdout
