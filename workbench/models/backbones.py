"""Registered backbones: image ``[B, C, H, W]`` -> feature map ``[B, F, ceil(H/s), ceil(W/s)]``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from workbench.errors import WorkbenchError
from workbench.models.norms import check_norm, make_norm
from workbench.models.registry import BACKBONES


class Backbone(nn.Module):
    """A feature extractor: ``forward(x[B, C, H, W]) -> [B, out_channels, H/stride, W/stride]``.

    Spatial sizes round up (``ceil``), so any input from 8x8 upwards gives a non-empty map.

    Attributes:
        out_channels: channels ``F`` of the returned feature map.
        stride: the factor between input and feature map sizes.
    """

    out_channels: int
    stride: int


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016): drops a residual branch per sample in training.

    Kept samples are scaled by ``1 / (1 - rate)``, so at eval the module is the identity.
    """

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: Tensor) -> Tensor:
        """Zeroes whole samples of ``x`` with probability ``rate`` in training."""
        if not self.training or self.rate == 0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - self.rate)
        return x * keep / (1 - self.rate)

    def extra_repr(self) -> str:
        return f"rate={self.rate:.3f}"


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs on the residual branch, 1x1 projection when needed."""

    def __init__(
        self, cin: int, cout: int, stride: int, norm: str, groups: int | None, drop_path: float
    ) -> None:
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=bias)
        self.norm1 = make_norm(norm, cout, groups)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=bias)
        self.norm2 = make_norm(norm, cout, groups)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=bias), make_norm(norm, cout, groups)
            )
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        """Returns ``relu(shortcut(x) + drop_path(branch(x)))``."""
        branch = self.norm2(self.conv2(torch.relu(self.norm1(self.conv1(x)))))
        return torch.relu(self.shortcut(x) + self.drop_path(branch))


@BACKBONES.register("small_cnn")
class SmallCNN(Backbone):
    """``depth`` blocks of conv3x3-norm-ReLU-maxpool2, doubling the width after each block.

    Args:
        in_channels: input channels.
        width: channels of the first block.
        depth: number of blocks; ``stride`` is ``2 ** depth``.
        norm: one of :data:`~workbench.models.norms.NORMS`.
        groups: GroupNorm groups (``norm="group"`` only; default up to 8).
        dropout: spatial dropout rate on the output feature map.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        width: int = 32,
        depth: int = 3,
        norm: str = "batch",
        groups: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_common(in_channels, width, norm, dropout)
        _check_positive("depth", depth)
        layers: list[nn.Module] = []
        cin = in_channels
        for i in range(depth):
            cout = width * 2**i
            layers += [
                nn.Conv2d(cin, cout, 3, padding=1, bias=norm == "none"),
                make_norm(norm, cout, groups),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout2d(dropout)
        self.out_channels = cin
        self.stride = 2**depth

    def forward(self, x: Tensor) -> Tensor:
        """Returns the feature map ``[B, out_channels, ceil(H/stride), ceil(W/stride)]``."""
        return self.dropout(self.features(x))


@BACKBONES.register("resnet")
class ResNet(Backbone):
    """ResNet with basic blocks and a stride-1 3x3 stem, sized for 8x8 to 128x128 inputs.

    Stage ``s`` has ``width * 2**s`` channels; every stage after the first starts with a stride-2
    block, so ``stride`` is ``2 ** (stages - 1)``.

    Args:
        in_channels: input channels.
        depth: residual blocks per stage (a list of ``stages`` counts) or in total (an int, spread
            over the stages as evenly as possible, earlier stages first).
        width: channels of the stem and the first stage.
        stages: number of stages.
        norm: one of :data:`~workbench.models.norms.NORMS`.
        groups: GroupNorm groups (``norm="group"`` only; default up to 8).
        dropout: spatial dropout rate on the output feature map.
        drop_path: stochastic depth rate of the last block; block ``i`` of ``n`` drops its
            residual branch with probability ``drop_path * (i + 1) / n`` (Huang et al. 2016).
        checkpointing: recompute each block's activations in the backward pass instead of
            storing them (gradient checkpointing); outputs and gradients are unchanged.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        depth: int | Sequence[int] = 6,
        width: int = 32,
        stages: int = 3,
        norm: str = "batch",
        groups: int | None = None,
        dropout: float = 0.0,
        drop_path: float = 0.0,
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        _check_common(in_channels, width, norm, dropout)
        _check_positive("stages", stages)
        _check_rate("drop_path", drop_path)
        blocks_per_stage = _split_depth(depth, stages)
        total = sum(blocks_per_stage)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=norm == "none"),
            make_norm(norm, width, groups),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        cin = width
        for s, count in enumerate(blocks_per_stage):
            cout = width * 2**s
            for b in range(count):
                rate = drop_path * (len(blocks) + 1) / total
                stride = 2 if s > 0 and b == 0 else 1
                blocks.append(BasicBlock(cin, cout, stride, norm, groups, rate))
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.dropout = nn.Dropout2d(dropout)
        self.checkpointing = bool(checkpointing)
        self.out_channels = cin
        self.stride = 2 ** (stages - 1)
        self.stage_channels = [width * 2**s for s in range(stages)]
        self._stage_ends = {sum(blocks_per_stage[: s + 1]) - 1 for s in range(stages)}

    def stage_outputs(self, x: Tensor) -> list[Tensor]:
        """Returns the feature map at the end of every stage, finest first: stage ``s`` has
        ``stage_channels[s]`` channels at ``1 / 2**s`` of the input size (rounded up); the last
        one, after dropout, is what :meth:`forward` returns."""
        x = self.stem(x)
        outputs = []
        for number, block in enumerate(self.blocks):
            if self.checkpointing and torch.is_grad_enabled():
                x = checkpoint(_run_keeping_buffers(block), x, use_reentrant=False)
            else:
                x = block(x)
            if number in self._stage_ends:
                outputs.append(x)
        outputs[-1] = self.dropout(outputs[-1])
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        """Returns the feature map ``[B, out_channels, ceil(H/stride), ceil(W/stride)]``."""
        return self.stage_outputs(x)[-1]


def _run_keeping_buffers(block: nn.Module):
    """Wraps ``block`` for checkpointing so that the backward-pass recomputation sees the norms'
    running statistics as the forward pass saw them and leaves them as it left them."""
    before: list[Tensor] = []

    def run(x: Tensor) -> Tensor:
        if not before:
            before.extend(b.detach().clone() for b in block.buffers())
            return block(x)
        after = [b.detach().clone() for b in block.buffers()]
        _assign(block, before)
        try:
            return block(x)
        finally:
            _assign(block, after)

    return run


def _assign(block: nn.Module, values: list[Tensor]) -> None:
    with torch.no_grad():
        for buffer, value in zip(block.buffers(), values, strict=True):
            buffer.copy_(value)


def saved_activation_bytes(model: nn.Module, x: Tensor) -> int:
    """Measures the memory that autograd keeps for the backward pass of ``model(x)``.

    Sums ``numel * element_size`` over the tensors packed by
    :class:`torch.autograd.graph.saved_tensors_hooks` during one forward pass with gradients
    enabled, leaving out the model's parameters and buffers (which are held anyway). The model's
    train/eval mode is used as it is.

    Args:
        model: the module to measure.
        x: an input batch.

    Returns:
        Bytes of saved activations.
    """
    held = {p.data_ptr() for p in model.parameters()} | {b.data_ptr() for b in model.buffers()}
    total = 0

    def pack(tensor: Tensor) -> Tensor:
        nonlocal total
        if tensor.data_ptr() not in held:
            total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return total


def _split_depth(depth: int | Sequence[int], stages: int) -> list[int]:
    if isinstance(depth, int):
        if depth < stages:
            raise WorkbenchError(
                f"depth must be at least stages={stages} (one block each); got {depth}"
            )
        return [depth // stages + (s < depth % stages) for s in range(stages)]
    counts = list(depth)
    if len(counts) != stages or not all(isinstance(c, int) and c >= 1 for c in counts):
        raise WorkbenchError(
            f"depth must be an int or a list of {stages} positive block counts; got {depth!r}"
        )
    return counts


def _check_common(in_channels: int, width: int, norm: str, dropout: float) -> None:
    _check_positive("in_channels", in_channels)
    _check_positive("width", width)
    check_norm(norm)
    _check_rate("dropout", dropout)


def _check_positive(option: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise WorkbenchError(f"{option} must be a positive integer; got {value!r}")


def _check_rate(option: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise WorkbenchError(f"{option} must be a number in [0, 1); got {value!r}")
