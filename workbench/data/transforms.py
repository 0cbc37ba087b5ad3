"""Tensor transforms of source items shared by training, evaluation and search."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def harmonise(item: dict[str, Any], size: int, channels: int) -> dict[str, torch.Tensor]:
    """Converts a source item to tensors of the common size and channel count."""
    image = torch.from_numpy(np.ascontiguousarray(item["image"], np.float32)).permute(2, 0, 1)
    if image.shape[0] != channels:
        if channels == 1:
            image = (image * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(
                0, keepdim=True
            )
        else:
            image = image.expand(channels, -1, -1)
    if image.shape[1:] != (size, size):
        image = F.interpolate(
            image[None], (size, size), mode="bilinear", antialias=True, align_corners=False
        )[0].clamp(0, 1)
    out = {"image": image.contiguous(), "label": torch.tensor(item["label"])}
    for key, fill, dtype in (("seg", -1, torch.long), ("depth", 0.0, torch.float32)):
        value = item.get(key)
        if value is None:
            out[key] = torch.full((size, size), fill, dtype=dtype)
        else:
            tensor = torch.as_tensor(np.asarray(value)).to(torch.float32)[None, None]
            out[key] = F.interpolate(tensor, (size, size), mode="nearest")[0, 0].to(dtype)
    return out
