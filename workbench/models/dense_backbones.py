"""Encoder-decoder backbones for dense tasks: full-resolution feature maps (``stride`` 1).

Both are registered in :data:`~workbench.models.registry.BACKBONES` beside the classifiers'
backbones, so a dense model (or a classifier) names them the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.errors import WorkbenchError
from workbench.models.backbones import (
    Backbone,
    ResNet,
    _check_common,
    _check_positive,
)
from workbench.models.norms import make_norm
from workbench.models.registry import BACKBONES


def _conv_block(cin: int, cout: int, norm: str, groups: int | None) -> nn.Sequential:
    """Two conv3x3-norm-ReLU layers (the U-Net's unit)."""
    bias = norm == "none"
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=bias),
        make_norm(norm, cout, groups),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=bias),
        make_norm(norm, cout, groups),
        nn.ReLU(inplace=True),
    )


def _resize(x: Tensor, like: Tensor) -> Tensor:
    """``x`` bilinearly resized to the spatial size of ``like`` (a no-op when equal)."""
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x, like.shape[-2:], mode="bilinear", align_corners=False)


@BACKBONES.register("unet")
class UNet(Backbone):
    """A small U-Net (Ronneberger et al. 2015): ``depth`` levels of two conv3x3 layers, max
    pooling down, bilinear upsampling and skip concatenation up; ``stride`` 1.

    Level ``i`` has ``width * 2**i`` channels; the output has ``width``. Odd sizes are fine:
    each upsampled map is resized to its skip connection.

    Args:
        in_channels: input channels.
        width: channels of the first (finest) level.
        depth: number of levels, at least 2.
        norm: one of :data:`~workbench.models.norms.NORMS`.
        groups: GroupNorm groups (``norm="group"`` only).
        dropout: spatial dropout rate at the coarsest level.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        width: int = 16,
        depth: int = 3,
        norm: str = "batch",
        groups: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_common(in_channels, width, norm, dropout)
        _check_positive("depth", depth)
        if depth < 2:
            raise WorkbenchError(f"depth must be at least 2 (levels of the U-Net); got {depth}")
        widths = [width * 2**i for i in range(depth)]
        self.down = nn.ModuleList()
        cin = in_channels
        for cout in widths:
            self.down.append(_conv_block(cin, cout, norm, groups))
            cin = cout
        self.up = nn.ModuleList(
            _conv_block(widths[i + 1] + widths[i], widths[i], norm, groups)
            for i in reversed(range(depth - 1))
        )
        self.dropout = nn.Dropout2d(dropout)
        self.out_channels = width
        self.stride = 1

    def forward(self, x: Tensor) -> Tensor:
        """Returns the feature map ``[B, width, H, W]``."""
        skips = []
        for number, block in enumerate(self.down):
            if number:
                x = F.max_pool2d(x, 2, ceil_mode=True)
            x = block(x)
            skips.append(x)
        x = self.dropout(skips.pop())
        for block in self.up:
            skip = skips.pop()
            x = block(torch.cat([_resize(x, skip), skip], dim=1))
        return x


@BACKBONES.register("fpn")
class FPN(Backbone):
    """A feature pyramid (Lin et al. 2017) over the workbench's :class:`ResNet`, merged at full
    resolution as in Panoptic FPN (Kirillov et al. 2019); ``stride`` 1.

    Every ResNet stage gets a 1x1 lateral convolution to ``fpn_width`` channels; the top-down
    path adds each coarser level, upsampled, to the next finer one and smooths it with a 3x3
    convolution; the levels are then upsampled to the finest (the input size, as the ResNet's
    first stage has stride 1) and summed.

    Args:
        in_channels: input channels.
        depth: residual blocks per stage or in total (see :class:`ResNet`).
        width: channels of the ResNet's first stage.
        stages: ResNet stages (pyramid levels).
        fpn_width: channels of every pyramid level and of the output.
        norm: one of :data:`~workbench.models.norms.NORMS`, in the ResNet and the smoothing.
        groups: GroupNorm groups (``norm="group"`` only).
        dropout: spatial dropout rate on the ResNet's last stage.
        drop_path: the ResNet's stochastic depth rate.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        depth: int | Sequence[int] = 6,
        width: int = 32,
        stages: int = 3,
        fpn_width: int = 32,
        norm: str = "batch",
        groups: int | None = None,
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        _check_positive("fpn_width", fpn_width)
        self.encoder = ResNet(
            in_channels,
            depth=depth,
            width=width,
            stages=stages,
            norm=norm,
            groups=groups,
            dropout=dropout,
            drop_path=drop_path,
        )
        self.lateral = nn.ModuleList(
            nn.Conv2d(channels, fpn_width, 1) for channels in self.encoder.stage_channels
        )
        self.smooth = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(fpn_width, fpn_width, 3, padding=1, bias=norm == "none"),
                make_norm(norm, fpn_width, groups),
                nn.ReLU(inplace=True),
            )
            for _ in self.encoder.stage_channels
        )
        self.out_channels = fpn_width
        self.stride = 1

    def forward(self, x: Tensor) -> Tensor:
        """Returns the feature map ``[B, fpn_width, H, W]``."""
        stages = self.encoder.stage_outputs(x)
        levels = [lateral(s) for lateral, s in zip(self.lateral, stages, strict=True)]
        for i in reversed(range(len(levels) - 1)):
            levels[i] = levels[i] + _resize(levels[i + 1], levels[i])
        merged = [smooth(level) for smooth, level in zip(self.smooth, levels, strict=True)]
        out = merged[0]
        for level in merged[1:]:
            out = out + _resize(level, out)
        return out
