"""The reports benchmark runs end to end on a small timebank and prints its table, and the
plainest SQL agrees with the service (no timing is asserted)."""

import subprocess
import sys


def bench_reports(*options: str) -> str:
    """What ``timebank bench reports`` prints, after checking that it succeeded."""
    result = subprocess.run(
        [sys.executable, "-m", "timebank.cli", "bench", "reports", *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_reports_prints_every_report_and_the_checks_agree():
    out = bench_reports("--participants", "60", "--exchanges", "2000", "--runs", "2")
    for line in (
        "checked: all 2,000 exchanges match their transfers",
        "a  Reports.contribution, month, full view",
        "b  Reports.contribution, month, funder view",
        "c  Reports.reciprocity, one participant",
        "d  Reports.reciprocity, everyone",
        "e  plain SQL for a",
        "f  plain SQL for c",
        "(e/a)",
        "contribution for a year <= 150 ms (a)",
        "reciprocity for one person <= 20 ms (c)",
    ):
        assert line in out, f"missing {line!r} in:\n{out}"
    assert "check e vs a, totals (minutes, exchanges, active): OK" in out, out
    assert "check e vs a, every figure of every month, category and flow: OK" in out, out
    assert "check f vs c: OK" in out, out
    assert "c's row is in it): OK" in out, out
    assert "MISMATCH" not in out, out
    assert "where the service's time goes" in out, out
    assert "\n    a: " in out and "\n    c: " in out, out  # each report's SQL statements


def test_a_kept_database_is_measured_again_without_rebuilding(tmp_path):
    kept = ("--participants", "40", "--exchanges", "500", "--runs", "1")
    first = bench_reports(*kept, "--keep", str(tmp_path / "kept"))
    second = bench_reports(*kept, "--keep", str(tmp_path / "kept"))
    assert "checked: all 500 exchanges match their transfers" in first, first
    assert "measuring the timebank built earlier" not in first, first
    assert "measuring the timebank built earlier" in second, second
    assert "40 participants, 500 approved exchanges" in second, second
    assert "checked: all" not in second, second  # nothing was built again
    assert "check e vs a, every figure of every month, category and flow: OK" in second, second
