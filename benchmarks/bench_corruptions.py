"""The torch corruptions beside their reference implementation, ``imagecorruptions`` 1.1.2:
parity (every corruption and severity, ``imagenet_c`` table, at 32 and 64 pixels) and
throughput (whole batches here, one image at a time there), in one process.

imagecorruptions 1.1.2 predates NumPy 2, scikit-image's ``channel_axis`` and setuptools without
``pkg_resources``; its code runs unchanged behind three shims that restore only the removed
names (``np.float_``, the ``multichannel`` keyword of ``skimage.filters.gaussian``,
``pkg_resources.resource_filename``). Images: six scikit-image photographs, resized.

Parity, per corruption, severity and size:

* deterministic corruptions: the mean absolute difference of the outputs on the 0-1 scale
  (the reference truncates its float output to 8 bits, about half a level by itself);
* random ones (drawn from other generators): the ratio of the strengths (mean absolute change
  to the clean images) and the difference of the mean signed changes, over repeated draws.

Throughput: images per second at 32 pixels (RGB, severity 3, batches of ``batch``), the median
of ``repeats`` timed batches after a warm-up, ours and the reference alternated.
``tests/evaluation/test_corruption_parity.py`` holds the parity to the tolerances below.

Usage: python benchmarks/bench_corruptions.py --out bench_out [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
import types
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import skimage.data
import skimage.transform
import torch

from workbench.evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from workbench.experiments.provenance import Recorder

DETERMINISTIC = (
    "defocus_blur", "zoom_blur", "gaussian_blur", "brightness", "contrast", "pixelate",
    "jpeg_compression", "saturate",
)  # fmt: skip
"""The corruptions without random draws: their outputs are compared pixel by pixel."""
DIFFERENCE_TOLERANCE = 1 / 255
"""Largest mean absolute difference of a deterministic corruption's outputs."""
STRENGTH_TOLERANCE = {"spatter": 0.30}
"""Largest |strength ratio - 1| where it is not 0.08: spatter's water drops use kornia's Canny
on the gradient's L2 norm where OpenCV's uses the L1 norm."""
SHIFT_TOLERANCE = {"frost": 0.02}
"""Largest difference of the mean signed changes where it is not 0.01: frost picks one of five
photographs of different brightness per image, so its mean change has a standard error of
about 0.004 even over 60 draws of the six images."""
DRAWS = 12
# frost picks one of five photographs per image, so its strength varies most between draws;
# glass blur varies little and the reference moves its pixels one by one in Python (slow)
DRAWS_OF = {"frost": 60, "glass_blur": 4}


def reference() -> ModuleType:
    """Returns ``imagecorruptions`` with its removed dependencies' names restored."""
    if "pkg_resources" not in sys.modules:
        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = lambda package, name: os.path.join(
            os.path.dirname(importlib.util.find_spec(package).origin), name
        )
        sys.modules["pkg_resources"] = shim
    if not hasattr(np, "float_"):
        np.float_ = np.float64
    with warnings.catch_warnings():  # its scipy.ndimage.interpolation import is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        import imagecorruptions
        import imagecorruptions.corruptions as functions
    from skimage.filters import gaussian

    def gaussian_multichannel(image, sigma=1, multichannel=None, **options):
        if multichannel:
            options["channel_axis"] = -1
        return gaussian(image, sigma=sigma, **options)

    functions.gaussian = gaussian_multichannel
    return imagecorruptions


def photos(size: int) -> np.ndarray:
    """Six scikit-image photographs, ``6 x size x size x 3`` uint8."""
    originals = [
        skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(),
        skimage.data.rocket(), skimage.data.immunohistochemistry(), skimage.data.colorwheel(),
    ]  # fmt: skip
    resized = [
        skimage.transform.resize(p[..., :3], (size, size), anti_aliasing=True) for p in originals
    ]
    return (np.stack(resized) * 255).round().astype(np.uint8)


def _theirs(ref: ModuleType, images: np.ndarray, name: str, severity: int) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = [ref.corrupt(image, severity, name) for image in images]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255


def parity(ref: ModuleType, name: str, severity: int, size: int) -> dict[str, float]:
    """The parity of one corruption at one severity and size (see the module docstring)."""
    images = photos(size)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    draws = 1 if name in DETERMINISTIC else DRAWS_OF.get(name, DRAWS)
    theirs, ours = [], []
    for seed in range(draws):
        np.random.seed(seed)
        theirs.append(_theirs(ref, images, name, severity))
        ours.append(corrupt(x, name, severity, seed=seed, parameters="imagenet_c"))
    theirs, ours = torch.cat(theirs), torch.cat(ours)
    if name in DETERMINISTIC:
        return {"difference": float((ours - theirs).abs().mean())}
    clean = x.repeat(draws, 1, 1, 1)
    strength = float((ours - clean).abs().mean()) / float((theirs - clean).abs().mean())
    shift = float((ours - clean).mean() - (theirs - clean).mean())
    return {"strength_ratio": strength, "shift": shift, "draws": draws}


def throughput(ref: ModuleType, batch: int, repeats: int) -> dict[str, dict[str, float]]:
    """Images per second of ours (one batched call) and the reference (image by image) at
    severity 3, 32 pixels, and their ratio."""
    images = np.concatenate([photos(32)] * (batch // 6 + 1))[:batch]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    rates = {}
    for name in sorted(CORRUPTIONS):
        arms = {
            "ours": lambda seed, n=name: corrupt(x, n, 3, seed=seed, parameters="imagenet_c"),
            "reference": lambda seed, n=name: _theirs(ref, images, n, 3),
        }
        for call in arms.values():
            call(0)  # warm-up
        seconds: dict[str, list[float]] = {arm: [] for arm in arms}
        for repeat in range(repeats):
            for arm in arms if repeat % 2 == 0 else reversed(arms):
                start = time.perf_counter()
                arms[arm](repeat + 1)
                seconds[arm].append(time.perf_counter() - start)
        ours, theirs = (batch / statistics.median(seconds[a]) for a in ("ours", "reference"))
        rates[name] = {"ours": ours, "reference": theirs, "speedup": ours / theirs}
    return rates


def tolerances(name: str) -> dict[str, float]:
    """The parity test's limits for corruption ``name``."""
    if name in DETERMINISTIC:
        return {"difference": DIFFERENCE_TOLERANCE}
    return {
        "strength": STRENGTH_TOLERANCE.get(name, 0.08),
        "shift": SHIFT_TOLERANCE.get(name, 0.01),
    }


def markdown(results: dict) -> str:
    """The README table: per corruption the worst parity over severities and sizes, and the
    throughput."""
    sizes = ", ".join(str(s) for s in results["sizes"])
    lines = [
        f"Parity with `imagecorruptions` 1.1.2 (`imagenet_c` table, six photographs at {sizes} "
        "px, severities 1-5; worst over severities and sizes) and throughput at 32 px, RGB, "
        f"severity 3, batches of {results['batch']} ({results['threads']} torch threads; "
        f"median of {results['repeats']} batches, alternated):",
        "",
        "| corruption | parity measure | worst | tolerance | ours, images / s | "
        "reference, images / s | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, per in results["parity"].items():
        rows = [v for size in per.values() for v in size.values()]
        limits = results["tolerances"][name]
        if "difference" in rows[0]:
            measure, worst = "mean abs. difference", f"{max(r['difference'] for r in rows):.4f}"
            tolerance = f"{limits['difference']:.4f}"
        else:
            ratios = [r["strength_ratio"] for r in rows]
            shift = max(abs(r["shift"]) for r in rows)
            measure = "strength ratio; mean shift"
            worst = f"{min(ratios):.3f} to {max(ratios):.3f}; {shift:.4f}"
            tolerance = f"1 ± {limits['strength']:.2f}; {limits['shift']:g}"
        speed = results["throughput"][name]
        lines.append(
            f"| {name} | {measure} | {worst} | {tolerance} | {speed['ours']:.0f} | "
            f"{speed['reference']:.0f} | {speed['speedup']:.1f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--quick", action="store_true", help="32 px and a small batch (smoke)")
    args = parser.parse_args()
    recorder = Recorder(seeds={"draws": "0 .. draws - 1, both sides"})
    ref = reference()
    sizes, batch, repeats = ((32,), 12, 1) if args.quick else ((32, 64), 256, 5)
    results = {
        "sizes": list(sizes),
        "batch": batch,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "parity": {
            name: {
                str(size): {str(s): parity(ref, name, s, size) for s in SEVERITIES}
                for size in sizes
            }
            for name in sorted(CORRUPTIONS)
        },
        "throughput": throughput(ref, batch, repeats),
        "tolerances": {name: tolerances(name) for name in sorted(CORRUPTIONS)},
    }
    results["provenance"] = recorder.block()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "corruptions.json").write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
