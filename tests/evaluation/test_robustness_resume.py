"""``workbench robustness`` killed mid-run (SIGKILL of its whole process group once a unit of
the sweep is saved) resumes from the saved units and ends with exactly the result of a run that
was never interrupted."""

import json
from pathlib import Path

import torch

from tests.conftest import kill_cli_when, run_cli

OPTIONS = ["--budget", "quick", "--n", "16", "--attacks", "fgsm", "--eps", "0.05,0.1",
           "--steps", "5", "--corruptions", "contrast", "--quiet"]  # fmt: skip


def robustness(ckpt: Path, out: Path) -> list[str]:
    return ["robustness", "--ckpt", str(ckpt), "--data", "digits", "--out", str(out), *OPTIONS]


def comparable(value):
    """Returns ``value`` (a unit or a report) with tensors as exact lists and timings dropped."""
    if isinstance(value, torch.Tensor):
        return (str(value.dtype), tuple(value.shape), value.tolist())
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list | tuple):
        return [comparable(v) for v in value]
    return value


def units(folder: Path) -> dict[str, object]:
    return {
        p.name: comparable(torch.load(p, weights_only=True))
        for p in sorted((folder / "units").glob("*.pt"))
    }


def test_a_killed_run_resumes_to_the_uninterrupted_result(tiny_ckpt, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run_cli(*robustness(tiny_ckpt, whole))
    saved_units = killed / "units"
    kill_cli_when(robustness(tiny_ckpt, killed), lambda: any(saved_units.glob("eps_*.pt")))
    saved = {p.name: p.stat().st_mtime_ns for p in saved_units.glob("*.pt")}
    # killed mid-run: the first epsilon is saved, the report and some units are not
    assert "eps_0.05.pt" in saved and not (killed / "report.json").exists()
    assert set(saved) < set(units(whole)), saved

    done = run_cli(*robustness(tiny_ckpt, killed))
    assert done.stdout.strip().splitlines()[-1] == str(killed / "report.html")
    # the units saved before the kill were reused, not computed again
    assert {name: (saved_units / name).stat().st_mtime_ns for name in saved} == saved
    assert units(killed) == units(whole)
    resumed = json.loads((killed / "report.json").read_text())
    uninterrupted = json.loads((whole / "report.json").read_text())
    assert comparable(resumed) == comparable(uninterrupted)
    assert resumed["checks_passed"] and len(resumed["checks"]) == 8


def test_units_on_two_workers_give_the_serial_result(tiny_ckpt, tmp_path):
    """The sweep points and corruptions as Ray tasks on 2 workers (one thread each) end with the
    units and report of a serial run at one thread."""
    serial, spread = tmp_path / "serial", tmp_path / "spread"
    run_cli(*robustness(tiny_ckpt, serial), "--threads", "1")
    run_cli(*robustness(tiny_ckpt, spread), "--threads", "1", "--workers", "2", timeout=600)
    assert units(spread) == units(serial)
    parallel = json.loads((spread / "report.json").read_text())
    one = json.loads((serial / "report.json").read_text())
    assert parallel.pop("execution") == {"workers": 2, "threads": 1}
    assert one.pop("execution") == {"workers": 1, "threads": 1}
    assert comparable(parallel) == comparable(one)
