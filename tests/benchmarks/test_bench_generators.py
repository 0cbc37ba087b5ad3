"""benchmarks/bench_generators.py: every arm is timed on the same batch, and the table reports
throughput and the ratio to the GAN (no timing is asserted)."""

from __future__ import annotations

from tests.conftest import load_benchmark


def test_every_arm_is_measured_and_tabled():
    bench = load_benchmark("bench_generators")
    arms = bench.measure(batch=4, repeats=2)
    assert set(arms) == {
        "diffusion DDIM 25, guidance 2", "diffusion DDIM 25, guidance 1",
        "diffusion DDIM 50, guidance 2", "diffusion DDIM 50, guidance 1",
        "SDEdit 0.3 (25-step schedule)", "SDEdit 0.6 (25-step schedule)", "GAN", "VAE",
    }  # fmt: skip
    assert arms["GAN"]["gan_over_this"] == 1.0
    assert all(row["images_per_s"] > 0 for row in arms.values())
    table = bench.markdown({"batch": 4, "repeats": 2, "threads": 1, "arms": arms})
    assert "| diffusion DDIM 50, guidance 2 |" in table and "times slower than the GAN" in table
