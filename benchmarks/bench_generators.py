"""Sampling throughput of the generative augmenters, side by side in one process.

Images per second at 16 px (grey, the augment study's architectures) for

* the class-conditional diffusion model with DDIM at 25 and 50 steps, with classifier-free
  guidance (scale 2: two network passes per step) and without (scale 1: one pass);
* SDEdit refining at strengths 0.3 and 0.6 (25-step schedule, unconditional: only the last
  ``strength`` of the steps run);
* the conditional GAN and VAE (one decoder pass);

each the median of ``repeats`` timed batches of ``batch`` images after a warm-up batch, the
arms alternated within every repeat. The weights are freshly initialised: throughput depends
on the architecture and the number of network passes, not on what the weights learned. Ratios
are to the GAN (how many times slower than one generator pass).

Usage: python benchmarks/bench_generators.py --out bench_out [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from workbench.experiments.augment import StudyConfig
from workbench.experiments.provenance import Recorder
from workbench.generative.diffusion import ConditionalDiffusion
from workbench.generative.gan import ConditionalGAN
from workbench.generative.vae import ConditionalVAE


def _arms(batch: int) -> dict[str, Callable[[int], object]]:
    """Arm name -> a call that makes ``batch`` images from a seed."""
    options = StudyConfig().options
    shape = {"num_classes": 10, "in_channels": 1, "image_size": 16}
    torch.manual_seed(0)
    diffusion = ConditionalDiffusion(**shape, **options["diffusion"]).eval()
    gan = ConditionalGAN(**shape, **options["gan"]).eval()
    vae = ConditionalVAE(**shape, **options["vae"]).eval()
    labels = [i % 10 for i in range(batch)]
    images = torch.rand(batch, 1, 16, 16)
    arms: dict[str, Callable[[int], object]] = {}
    for steps in (25, 50):
        for guidance in (2.0, 1.0):
            name = f"diffusion DDIM {steps}, guidance {guidance:g}"
            arms[name] = lambda seed, s=steps, g=guidance: diffusion.generate(
                labels, seed, steps=s, guidance=g, chunk=batch
            )
    for strength in (0.3, 0.6):
        arms[f"SDEdit {strength:g} (25-step schedule)"] = (
            lambda seed, s=strength: diffusion.refine(images, s, seed, steps=25)
        )
    arms["GAN"] = lambda seed: gan.generate(labels, seed)
    arms["VAE"] = lambda seed: vae.generate(labels, seed)
    return arms


def measure(batch: int, repeats: int) -> dict[str, dict[str, float]]:
    """Returns images per second of every arm (median over ``repeats``) and the ratio to the
    GAN."""
    arms = _arms(batch)
    for call in arms.values():
        call(0)  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    for repeat in range(repeats):
        order = list(arms) if repeat % 2 == 0 else list(reversed(arms))
        for name in order:
            start = time.perf_counter()
            arms[name](repeat + 1)
            seconds[name].append(time.perf_counter() - start)
    rates = {name: batch / statistics.median(times) for name, times in seconds.items()}
    return {
        name: {"images_per_s": rate, "gan_over_this": rates["GAN"] / rate}
        for name, rate in rates.items()
    }


def markdown(results: dict) -> str:
    """The README table."""
    lines = [
        f"Sampling throughput at 16 px, grey, batches of {results['batch']} "
        f"({results['threads']} torch threads; median of {results['repeats']} batches, arms "
        "alternated; freshly initialised weights, the augment study's architectures):",
        "",
        "| generator | images / s | times slower than the GAN |",
        "|---|---|---|",
    ]
    for name, row in results["arms"].items():
        lines.append(f"| {name} | {row['images_per_s']:.0f} | {row['gan_over_this']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--quick", action="store_true", help="one small batch (a smoke run)")
    args = parser.parse_args()
    recorder = Recorder(seeds={"weights": 0})
    batch, repeats = (16, 1) if args.quick else (256, 5)
    results = {
        "batch": batch,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "arms": measure(batch, repeats),
    }
    results["provenance"] = recorder.block()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "generators.json").write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
