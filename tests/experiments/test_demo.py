"""``workbench demo --quick`` twice, from callers that differ the way machines do (thread counts
and SIMD kernels): the printed numbers are the same, because the demo pins its numerics."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import run_cli


def _numbers(stdout: str) -> dict[str, str]:
    """The printed lines that carry measured numbers (paths differ between output folders)."""
    rows = dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)
    return {key: value for key, value in rows.items() if "accuracy" in key or "sha256" in key}


@pytest.mark.timeout(1200)
def test_quick_demo_prints_the_same_numbers_whatever_the_threads_and_kernels(tmp_path):
    here = {**os.environ}
    elsewhere = {**os.environ, "OMP_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "default"}
    # without the pins these two differ in the trained weights (and so in the digests)
    runs = [
        run_cli("demo", "--quick", "--out", str(tmp_path / name), timeout=1200, env=env).stdout
        for name, env in (("here", here), ("elsewhere", elsewhere))
    ]
    first, second = (_numbers(stdout) for stdout in runs)
    assert len(first) == 5, runs[0]  # two test accuracies, two digests, one worst-case accuracy
    assert first == second
    summary = json.loads((tmp_path / "here" / "summary.json").read_text())
    assert summary["quick"] and summary["printed"] == {**summary["printed"], **first}
    pinned = summary["provenance"]["env"]
    assert pinned["OMP_NUM_THREADS"] == "2" and summary["provenance"]["torch_threads"] == 2
