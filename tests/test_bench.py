"""The benchmark program runs end to end and prints its figures (no timing is asserted)."""

import re
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
    # Group sessions of 20 legs, each posted as logged: legs/s beside the floor's transfers/s.
    groups = re.search(r"d  service: Exchanges\.log_group x20 +(\d+) ", result.stdout)
    assert groups is not None and int(groups[1]) > 0, result.stdout
    assert "log_group x20: " not in result.stdout, "a session failed: " + result.stdout
    assert re.search(r"group legs / floor \(d/a\): [\d.]+", result.stdout), result.stdout
    assert "ledger verified clean" in result.stdout
    # The C floor (pgbench, shipped with the embedded PostgreSQL) ran, and every ratio has it.
    c_floor = re.search(
        r"C floor \(pgbench, 2 clients, same SQL\): ([\d.]+) transfers/s", result.stdout
    )
    assert c_floor is not None and float(c_floor[1]) > 0, result.stdout
    for line in (
        "a0 C floor: pgbench",
        "service / C floor (b/a0)",
        "batch / C floor (c/a0)",
        "group legs / C floor (d/a0)",
    ):
        assert line in result.stdout, result.stdout
