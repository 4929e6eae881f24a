"""Every benchmark in tests/perf still runs: each script's `--quick` mode, in its own process,
prints a JSON report with the keys its full run has. Its figures are never checked: speed is
measured by the scripts, not asserted by tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

PERF = Path(__file__).resolve().parent / "perf"
REPORT_KEYS = {
    "bench_activity": {
        "streams",
        "bare_httpx",
        "roost_follower",
        "console",
        "ratios",
        "targets",
    },
    "bench_attach": {"keypress_to_echo_ms", "remote_output", "targets", "machine", "setup"},
    "bench_backup": {"roost_mb_s", "bare_httpx_mb_s", "ratio", "roost_peak_rss_mib", "quick"},
    "bench_fleet": {"assistants", "in_process", "end_to_end_tmux", "ratios", "targets"},
    "bench_health": {"sweep", "keys_during_sweep", "idle", "scale", "targets"},
    "bench_hosts": {"refresh_ms", "keypress_to_echo_ms", "machine", "setup"},
    "bench_hook": {"hook", "hook_5000_files", "python", "python_no_site", "ratios", "targets"},
    "bench_memory": {"rss_mib", "idle_rss_mib", "bytes_per_scrollback_line", "targets"},
    "bench_restore": {"roost_mb_s", "bare_httpx_mb_s", "ratio", "roost_peak_rss_mib", "quick"},
    "bench_rewind": {"recording", "replay_from_start_ms", "intervals", "recorder_index", "targets"},
    "bench_terminal": {"workloads", "keypress_to_echo_ms", "third_party", "targets", "setup"},
}


def test_every_benchmark_is_run_here() -> None:
    assert {path.stem for path in PERF.glob("bench_*.py")} == set(REPORT_KEYS)


@pytest.mark.parametrize("script", sorted(REPORT_KEYS))
def test_quick_run_reports_its_keys(script: str) -> None:
    require("tmux", "ROOST_REQUIRE_TMUX")
    ran = subprocess.run(
        [sys.executable, "-m", f"tests.perf.{script}", "--quick"],
        cwd=PERF.parent.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr[-4000:]
    report = json.loads(ran.stdout)
    assert REPORT_KEYS[script] <= set(report), sorted(report)
