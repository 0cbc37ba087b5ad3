"""Corruption error normalised by a baseline model: CE, mCE and relative mCE (Hendrycks and
Dietterich 2019, section 3).

For a model ``f`` and corruption ``c`` with top-1 error ``E(f, c, s)`` at severity ``s``:

* ``CE(f, c) = sum_s E(f, c, s) / sum_s E(base, c, s)``; the mCE is the mean CE over the
  benchmark's fifteen corruptions;
* ``relative CE(f, c) = sum_s (E(f, c, s) - E(f, clean)) / sum_s (E(base, c, s) -
  E(base, clean))``, how much *more* a corruption hurts than the clean error; the relative mCE
  is its mean.

The extra corruptions (speckle noise, Gaussian blur, spatter, saturate) and the depth-aware
ones are reported per corruption but stay out of the means, as in the paper. The baseline is
the user's: the paper's AlexNet has no meaning on other data, so the report names the
checkpoint it normalised by.
"""

from __future__ import annotations

import statistics
from typing import Any

from workbench.errors import WorkbenchError

# the fifteen corruptions of ImageNet-C's mCE (noise, blur, weather, digital)
BENCHMARK = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
    "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
    "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip


def corruption_errors(
    model: dict[str, dict[str, float]],
    model_clean: float,
    baseline: dict[str, dict[str, float]],
    baseline_clean: float,
) -> dict[str, Any]:
    """Returns CE and relative CE per corruption, and mCE and relative mCE over the benchmark
    corruptions present.

    Args:
        model: corruption -> severity -> accuracy of the evaluated model.
        model_clean: its clean accuracy.
        baseline: the same for the baseline, on the same corrupted images.
        baseline_clean: the baseline's clean accuracy.

    Raises:
        WorkbenchError: the baseline makes no error under a corruption (the ratio is undefined).
    """
    per: dict[str, dict[str, float | None]] = {}
    for name, accuracies in model.items():
        errors = [1 - a for a in accuracies.values()]
        base = [1 - a for a in baseline[name].values()]
        if sum(base) <= 0:
            raise WorkbenchError(
                f"--baseline: the baseline makes no error under {name}; CE is undefined, choose "
                "a weaker baseline"
            )
        base_excess = sum(b - (1 - baseline_clean) for b in base)
        relative = (
            sum(e - (1 - model_clean) for e in errors) / base_excess if base_excess > 0 else None
        )
        per[name] = {"ce": sum(errors) / sum(base), "relative_ce": relative}
    counted = [name for name in BENCHMARK if name in per]
    relatives = [per[n]["relative_ce"] for n in counted if per[n]["relative_ce"] is not None]
    return {
        "per_corruption": per,
        "mce": statistics.fmean(per[n]["ce"] for n in counted) if counted else None,
        "relative_mce": statistics.fmean(relatives) if relatives else None,
        "counted": counted,
        "missing": [name for name in BENCHMARK if name not in per],
    }
