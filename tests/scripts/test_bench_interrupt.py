"""The bench harness stops its servers when it is interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.scripts.bench_short_runs import ROOT, bench_command


def _default_interrupt() -> None:
    # A suite started in the background by a non-interactive shell inherits SIGINT
    # ignored, and so would the harness: Python then never turns it into Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["int", "term"]
)
def test_interrupted_run_stops_its_servers(signum: signal.Signals, exit_code: int) -> None:
    # The signal goes to the harness alone, so only its own clean-up can stop the server.
    bench = subprocess.Popen(
        bench_command("--only", "grpc.echo", "--duration", "60", "--concurrency", "2"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_interrupt,
    )
    try:
        assert bench.stderr is not None
        for line in bench.stderr:
            if "measuring" in line:
                break
        children = Path(f"/proc/{bench.pid}/task/{bench.pid}/children").read_text().split()
        assert children, "the echo server should be running"
        bench.send_signal(signum)
        _, stderr = bench.communicate(timeout=30)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.communicate()
    assert bench.returncode == exit_code, stderr
    for pid in map(int, children):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
