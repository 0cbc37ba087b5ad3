"""Parity of the torch corruptions (``imagenet_c`` table) with the reference implementation,
the ``imagecorruptions`` package 1.1.2, at 32 and 64 pixels (its smallest size is 32): every
corruption and severity within the tolerances that ``benchmarks/bench_corruptions.py`` states
and publishes (the measurement, the shims that let the reference run, the images)."""

from __future__ import annotations

import pytest

from tests.conftest import load_benchmark
from workbench.evaluation.corruptions import CORRUPTIONS, SEVERITIES

BENCH = load_benchmark("bench_corruptions")


@pytest.fixture(scope="module")
def reference():
    return BENCH.reference()


def test_every_reference_corruption_is_ours(reference):
    assert set(reference.get_corruption_names("all")) == set(CORRUPTIONS)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_matches_imagecorruptions(reference, name, size):
    for severity in SEVERITIES:
        measured = BENCH.parity(reference, name, severity, size)
        where = f"{name} severity {severity} at {size} px"
        if name in BENCH.DETERMINISTIC:
            difference = measured["difference"]
            assert difference <= BENCH.tolerances(name)["difference"], f"{where}: {difference:.4f}"
            continue
        limits, ratio, shift = BENCH.tolerances(name), measured["strength_ratio"], measured["shift"]
        assert abs(ratio - 1) <= limits["strength"], f"{where}: strength ours / ref. {ratio:.3f}"
        assert abs(shift) <= limits["shift"], f"{where}: mean change differs by {shift:+.4f}"


def test_the_table_reports_parity_and_throughput(reference):
    parity = {"32": {"1": BENCH.parity(reference, "contrast", 1, 32)}}
    noisy = {"32": {"1": BENCH.parity(reference, "gaussian_noise", 1, 32)}}
    speed = BENCH.throughput(reference, batch=6, repeats=1)
    assert set(speed) == set(CORRUPTIONS) and all(v["ours"] > 0 for v in speed.values())
    table = BENCH.markdown({
        "sizes": [32], "batch": 6, "repeats": 1, "threads": 1, "throughput": speed,
        "parity": {"contrast": parity, "gaussian_noise": noisy},
        "tolerances": {n: BENCH.tolerances(n) for n in ("contrast", "gaussian_noise")},
    })  # fmt: skip
    assert "| contrast | mean abs. difference |" in table
    assert "| gaussian_noise | strength ratio; mean shift |" in table
