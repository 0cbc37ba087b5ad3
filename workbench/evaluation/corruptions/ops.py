"""Batched torch versions of the image operations the reference corruption code borrows from
SciPy, scikit-image, OpenCV and PIL, with the same borders, kernel sizes and rounding.

Border modes follow SciPy's names: ``nearest`` (edge value repeated; scikit-image's
``gaussian`` default), ``reflect`` (half-sample symmetric: ``d c b a | a b c d``) and
``mirror`` (whole-sample, OpenCV's default ``BORDER_REFLECT_101``: ``d c b | a b c d``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LUMA = (0.299, 0.587, 0.114)
"""OpenCV's RGB to grey weights."""


def uniform(
    low: float, high: float, shape: tuple[int, ...], generator: torch.Generator, like: Tensor
) -> Tensor:
    """Uniform draws in ``[low, high)`` on ``like``'s device, in float64."""
    draws = torch.rand(shape, generator=generator, device=like.device, dtype=torch.float64)
    return low + (high - low) * draws


def normal(
    mean: float, std: float, shape: tuple[int, ...], generator: torch.Generator, like: Tensor
) -> Tensor:
    """Normal draws on ``like``'s device, in float64."""
    draws = torch.randn(shape, generator=generator, device=like.device, dtype=torch.float64)
    return mean + std * draws


def grey(x: Tensor) -> Tensor:
    """``B x 1 x H x W`` grey levels of a one- or three-channel batch."""
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def _border_index(size: int, pad: int, mode: str, device: torch.device) -> Tensor:
    """Source indices of a line of ``size`` padded by ``pad`` on both sides."""
    index = torch.arange(-pad, size + pad, device=device)
    if mode == "nearest":
        return index.clamp(0, size - 1)
    if mode == "reflect":
        period = index.remainder(2 * size)
        return torch.where(period >= size, 2 * size - 1 - period, period)
    if mode == "mirror":
        if size == 1:
            return torch.zeros_like(index)
        period = index.remainder(2 * size - 2)
        return torch.where(period >= size, 2 * size - 2 - period, period)
    raise ValueError(f"unknown border mode {mode!r}")


def pad(x: Tensor, pad_h: int, pad_w: int, mode: str) -> Tensor:
    """Pads the last two dimensions (any width, unlike ``F.pad``'s reflection)."""
    rows = _border_index(x.shape[-2], pad_h, mode, x.device)
    cols = _border_index(x.shape[-1], pad_w, mode, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def correlate(x: Tensor, kernel: Tensor, mode: str) -> Tensor:
    """Correlates every channel with a 2-D ``kernel`` (odd sides), borders by ``mode``."""
    kh, kw = kernel.shape
    b, c, h, w = x.shape
    padded = pad(x, kh // 2, kw // 2, mode).reshape(b * c, 1, h + kh - 1, w + kw - 1)
    out = F.conv2d(padded, kernel.to(x.dtype)[None, None])
    return out.reshape(b, c, h, w)


def gaussian_kernel(sigma: float, truncate: float, dtype: torch.dtype) -> Tensor:
    """SciPy's 1-D Gaussian: radius ``int(truncate * sigma + 0.5)``, normalised."""
    radius = int(truncate * sigma + 0.5)
    grid = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (grid / sigma) ** 2) if sigma > 0 else (grid == 0).double()
    return (kernel / kernel.sum()).to(dtype)


def gaussian_filter(
    x: Tensor, sigma: float | tuple[float, float], mode: str = "nearest", truncate: float = 4.0
) -> Tensor:
    """scikit-image's ``gaussian`` (SciPy's ``gaussian_filter``) over the two spatial axes."""
    sigma_h, sigma_w = sigma if isinstance(sigma, tuple) else (sigma, sigma)
    along_h = gaussian_kernel(sigma_h, truncate, x.dtype).to(x.device)
    along_w = gaussian_kernel(sigma_w, truncate, x.dtype).to(x.device)
    x = correlate(x, along_w[None, :], mode)
    return correlate(x, along_h[:, None], mode)


def box_blur(x: Tensor, size: int = 3) -> Tensor:
    """OpenCV's ``blur``: a ``size`` x ``size`` mean, mirrored borders."""
    kernel = torch.full((size, size), 1.0 / size**2, dtype=x.dtype, device=x.device)
    return correlate(x, kernel, "mirror")


def shift_gather(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """Shifts each image ``b`` by ``(dy[b], dx[b])`` pixels, repeating the edge it leaves."""
    b, c, h, w = x.shape
    rows = (torch.arange(h, device=x.device)[None] - dy[:, None]).clamp(0, h - 1)
    cols = (torch.arange(w, device=x.device)[None] - dx[:, None]).clamp(0, w - 1)
    x = x.gather(2, rows[:, None, :, None].expand(b, c, h, w))
    return x.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def streak(x: Tensor, radius: int, sigma: float, angles: Tensor) -> Tensor:
    """ImageMagick's motion blur as ``imagecorruptions`` re-implements it: a one-sided streak
    of ``2 radius + 1`` Gaussian-weighted copies shifted along ``angles`` (degrees, one per
    image); a copy shifted past the image ends the streak (its weights are not renormalised).
    """
    width = 2 * radius + 1
    steps = torch.arange(width, dtype=torch.float64)
    weights = torch.exp(-(steps**2) / (2 * sigma**2))
    weights = (weights / weights.sum()).tolist()
    radians = torch.deg2rad(angles.double())
    point_y, point_x = width * torch.sin(radians), width * torch.cos(radians)
    hypot = torch.hypot(point_y, point_x)
    out = torch.zeros_like(x)
    alive = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    for i in range(width):
        dy = -torch.ceil(i * point_y / hypot - 0.5).long()
        dx = -torch.ceil(i * point_x / hypot - 0.5).long()
        alive &= (dy.abs() < x.shape[-2]) & (dx.abs() < x.shape[-1])
        if not alive.any():
            break
        out += weights[i] * alive.view(-1, 1, 1, 1) * shift_gather(x, dy, dx)
    return out


def clipped_zoom(x: Tensor, factor: float, trim: str) -> Tensor:
    """Zooms into the centre by ``factor`` with SciPy's ``zoom`` (order 1, corners aligned).

    Args:
        x: the batch.
        factor: the zoom, above 1.
        trim: ``centre`` cuts the result back to the input's size around its centre
            (CIFAR-10-C), ``none`` keeps the zoomed size (``imagecorruptions`` cuts later, from
            the top left).
    """
    h, w = x.shape[-2:]
    crop_h, crop_w = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    crop = x[..., top : top + crop_h, left : left + crop_w]
    size = (int(round(crop_h * factor)), int(round(crop_w * factor)))
    zoomed = F.interpolate(crop, size, mode="bilinear", align_corners=True)
    if trim == "none":
        return zoomed
    trim_h, trim_w = (size[0] - h) // 2, (size[1] - w) // 2
    return zoomed[..., trim_h : trim_h + h, trim_w : trim_w + w]


def plasma_fractal(
    batch: int, size: int, decay: float, generator: torch.Generator, like: Tensor
) -> Tensor:
    """``batch`` diamond-square height maps ``size`` x ``size`` (a power of two) in [0, 1], the
    reference's fog: midpoint means plus uniform noise of ``wibble**2`` that shrinks by
    ``decay`` per level."""
    grid = torch.zeros(batch, size, size, dtype=torch.float64, device=like.device)
    step, wibble = size, 100.0

    def wibbled(mean: Tensor) -> Tensor:
        return mean / 4 + wibble * uniform(-wibble, wibble, tuple(mean.shape), generator, like)

    while step >= 2:
        half = step // 2
        corners = grid[:, 0:size:step, 0:size:step]
        squares = corners + corners.roll(-1, dims=1)
        squares = squares + squares.roll(-1, dims=2)
        grid[:, half:size:step, half:size:step] = wibbled(squares)
        centres = grid[:, half:size:step, half:size:step]
        corners = grid[:, 0:size:step, 0:size:step]
        left = centres + centres.roll(1, dims=1) + corners + corners.roll(-1, dims=2)
        grid[:, 0:size:step, half:size:step] = wibbled(left)
        top = centres + centres.roll(1, dims=2) + corners + corners.roll(-1, dims=1)
        grid[:, half:size:step, 0:size:step] = wibbled(top)
        step //= 2
        wibble /= decay
    grid -= grid.amin(dim=(1, 2), keepdim=True)
    return grid / grid.amax(dim=(1, 2), keepdim=True)


def pil_box_weights(size_in: int, size_out: int) -> Tensor:
    """PIL's ``BOX`` resampling of a line as a ``size_out x size_in`` matrix (a pixel counts
    when its centre falls in the output pixel's box)."""
    scale = size_in / size_out
    filter_scale = max(scale, 1.0)
    support = 0.5 * filter_scale
    weights = torch.zeros(size_out, size_in, dtype=torch.float64)
    for i in range(size_out):
        centre = (i + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), size_in)
        for j in range(first, last):
            offset = (j - centre + 0.5) / filter_scale
            weights[i, j] = 1.0 if -0.5 < offset <= 0.5 else 0.0
        weights[i] /= weights[i].sum()
    return weights


def distance_to(mask: Tensor, cap: float) -> Tensor:
    """Euclidean distance of every pixel to the nearest ``True`` pixel of its image, at most
    ``cap`` (OpenCV's ``distanceTransform`` to the zeros, exact rather than its 5 x 5 mask)."""
    b, _, h, w = mask.shape
    grid = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    points = torch.stack(grid, -1).reshape(-1, 2).to(torch.float32).to(mask.device)
    out = torch.full((b, h * w), float(cap), device=mask.device)
    for i in range(b):
        sources = points[mask[i, 0].reshape(-1)]
        if len(sources):
            out[i] = torch.cdist(points, sources).amin(1).clamp(max=cap)
    return out.reshape(b, 1, h, w)


def equalize_hist(levels: Tensor) -> Tensor:
    """OpenCV's ``equalizeHist`` of 8-bit levels (0 to 255 as floats), one histogram per
    image: ``round((cdf - cdf(min)) * 255 / (pixels - count(min)))``."""
    b = levels.shape[0]
    flat = levels.reshape(b, -1).long().clamp(0, 255)
    hist = torch.zeros(b, 256, device=levels.device).scatter_add_(
        1, flat, torch.ones_like(flat, dtype=torch.float32)
    )
    lowest = flat.amin(1, keepdim=True)
    first = hist.gather(1, lowest)
    spread = (flat.shape[1] - first).clamp(min=1)
    lut = torch.round((hist.cumsum(1) - first).clamp(min=0) * 255 / spread)
    lut = torch.where(first == flat.shape[1], lowest.float().expand(b, 256), lut)
    return lut.gather(1, flat).reshape(levels.shape).to(levels.dtype)
